// Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE, ...) are macros over
// addresses of library globals, which Swift cannot import: these inline functions hand them over.
#ifndef TC_MPI_SHIM_H
#define TC_MPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm tc_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype tc_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype tc_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype tc_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype tc_mpi_int(void) { return MPI_INT; }
static inline MPI_Op tc_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op tc_mpi_max(void) { return MPI_MAX; }
static inline void *tc_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int tc_mpi_success(void) { return MPI_SUCCESS; }
static inline int tc_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline MPI_Status *tc_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline int tc_mpi_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }

#endif
