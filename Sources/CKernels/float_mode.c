// Subnormal floats on the hot path (see tc_kernels.h, "floating-point mode").
//
// Intel cores take a microcode assist, about a hundred cycles, for every subnormal operand or
// result of an SSE/AVX instruction; a backward cross-entropy whose probabilities had underflowed
// into subnormals ran 85 times slower on an Emerald Rapids Xeon (AMD Zen cores pay nothing, which
// hid it). FTZ (results) and DAZ (operands) live in each thread's MXCSR, and a new thread starts
// with a copy of its creator's, so the mode is set on the main thread before any computing thread
// exists; the threads that exist earlier (OpenBLAS's server threads, started by its library
// constructor) are stopped here and recreated on first use by a thread that has the mode.
#define _GNU_SOURCE
#include "tc_kernels.h"
#include <dlfcn.h>
#include <stdatomic.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TC_MXCSR_FTZ 0x8000u
#define TC_MXCSR_DAZ 0x0040u
#endif

void tc_set_subnormal_flushing(int on) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned int csr = _mm_getcsr();
    _mm_setcsr(on ? (csr | TC_MXCSR_FTZ | TC_MXCSR_DAZ) : (csr & ~(TC_MXCSR_FTZ | TC_MXCSR_DAZ)));
#elif defined(__aarch64__)
    unsigned long fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = on ? (fpcr | (1ul << 24)) : (fpcr & ~(1ul << 24));  // FZ: flush inputs and results
    __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr));
#else
    (void)on;
#endif
}

int tc_subnormal_flushing(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned int csr = _mm_getcsr();
    return (csr & (TC_MXCSR_FTZ | TC_MXCSR_DAZ)) == (TC_MXCSR_FTZ | TC_MXCSR_DAZ);
#elif defined(__aarch64__)
    unsigned long fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    return (int)((fpcr >> 24) & 1);
#else
    return 0;
#endif
}

int tc_openblas_restart_threads(void) {
    // blas_thread_shutdown_ is the call OpenBLAS's own fork handler makes; the next threaded
    // product starts the server threads again from its calling thread.
    int (*shutdown)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "blas_thread_shutdown_");
    if (!shutdown) return 0;
    shutdown();
    return 1;
}

typedef struct {
    _Atomic int threads;
    _Atomic int flushing;
} openmp_probe;

static void openmp_probe_body(void *context) {
    openmp_probe *probe = (openmp_probe *)context;
    atomic_fetch_add(&probe->threads, 1);
    if (tc_subnormal_flushing()) atomic_fetch_add(&probe->flushing, 1);
}

int tc_openmp_subnormal_flushing(int *threads) {
    // GOMP_parallel is libgomp's entry for `#pragma omp parallel` (the runtime oneDNN is built
    // against); libgomp keeps the team's threads for the next region of the same calling thread.
    void (*parallel)(void (*)(void *), void *, unsigned, unsigned) =
        (void (*)(void (*)(void *), void *, unsigned, unsigned))dlsym(RTLD_DEFAULT, "GOMP_parallel");
    *threads = 0;
    if (!parallel) return -1;
    openmp_probe probe;
    atomic_init(&probe.threads, 0);
    atomic_init(&probe.flushing, 0);
    parallel(openmp_probe_body, &probe, 0, 0);
    *threads = atomic_load(&probe.threads);
    return atomic_load(&probe.flushing);
}
