// Process-lifetime helpers that Swift cannot call directly (prctl is variadic).
#include "tc_kernels.h"

#include <signal.h>
#include <stddef.h>
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

// SIGINT while `chat` generates a reply: a flag the generator polls between steps. A C
// `volatile sig_atomic_t` is the one kind of object a signal handler may write.
static volatile sig_atomic_t reply_interrupted = 0;

static void note_reply_interrupt(int signal) {
    (void)signal;
    reply_interrupted = 1;
}

void tc_reply_interrupt_arm(void) {
    reply_interrupted = 0;
    struct sigaction action;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    action.sa_handler = note_reply_interrupt;
    sigaction(SIGINT, &action, NULL);
}

void tc_reply_interrupt_disarm(void) {
    struct sigaction action;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    action.sa_handler = SIG_DFL;
    sigaction(SIGINT, &action, NULL);
}

int tc_reply_interrupt_raised(void) { return reply_interrupted != 0; }
