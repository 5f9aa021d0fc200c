// Process-lifetime helpers that Swift cannot call directly (prctl is variadic).
#include "tc_kernels.h"

#include <signal.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

int tc_die_with_parent(int expected_parent) {
#ifdef __linux__
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -1;
#endif
    // The parent may have died before the request took effect: then no signal will come.
    if (expected_parent > 0 && getppid() != expected_parent) return 1;
    return 0;
}
