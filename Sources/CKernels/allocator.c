#include "tc_kernels.h"
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif

int tc_set_mmap_threshold(int bytes) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, bytes) == 1;
#else
    (void)bytes;
    return 0;
#endif
}
