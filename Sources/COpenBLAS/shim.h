#ifndef THOUGHTCRIME_COPENBLAS_SHIM_H
#define THOUGHTCRIME_COPENBLAS_SHIM_H
// Debian's libopenblas-dev puts cblas.h under an include directory that pkg-config reports.
// It declares the OpenBLAS extensions used here: openblas_get_corename,
// openblas_set_num_threads, openblas_get_num_threads, openblas_get_config.
#include <cblas.h>
#endif
