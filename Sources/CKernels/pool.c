// Spin-then-park thread pool for short parallel loops (see tc_pool.h).
//
// Work is claimed from one 64-bit word, `next` = generation << 32 | next chunk index. A helper
// claims chunk i by compare-and-swap on the whole word, so a helper that wakes late, after its
// loop finished and the next one began, can never claim a chunk of the wrong loop: the
// generation in its stale copy no longer matches. The caller publishes a loop in three steps:
// first `next` is set to the new generation with the index LOCKED (no claim can succeed), then
// task/context/chunks are written, then the index is set to 0. The caller returns only when
// `completed` reaches `chunks`, so task and context outlive every claim made on them.
#define _GNU_SOURCE
#include "tc_pool.h"
#include "tc_kernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#define TC_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define TC_PAUSE() __asm__ __volatile__("yield")
#else
#define TC_PAUSE() ((void)0)
#endif

#define LOCKED 0xFFFFFFFFu

struct tc_pool {
    _Atomic uint64_t next;       // generation << 32 | next unclaimed chunk (LOCKED while publishing)
    _Atomic int64_t chunks;
    _Atomic int64_t completed;
    _Atomic(tc_pool_task) task;
    _Atomic(void *) context;
    _Atomic uint32_t wake;       // futex word: bumped on every publish
    _Atomic int sleepers;
    _Atomic int stop;
    pthread_mutex_t busy;        // one loop at a time; other threads run theirs serially
    int helpers;
    int64_t spin_ns;
    pthread_t *threads;
};

static _Thread_local int inside_pool_task = 0;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void futex_wait(_Atomic uint32_t *word, uint32_t expected) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    if (atomic_load(word) == expected) sched_yield();
#endif
}

static void futex_wake_all(_Atomic uint32_t *word) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
#else
    (void)word;
#endif
}

// Claims and runs chunks of the loop `seen` belongs to until none is left; returns how many
// it ran. `seen` is a value of `next` the caller loaded.
static int64_t run_chunks(tc_pool *pool, uint64_t seen) {
    int64_t ran = 0;
    for (;;) {
        uint32_t index = (uint32_t)seen;
        if (index == LOCKED || (int64_t)index >= atomic_load(&pool->chunks)) return ran;
        // On failure `seen` is reloaded with the current word and the checks run again.
        if (!atomic_compare_exchange_weak(&pool->next, &seen, seen + 1)) continue;
        // The claim succeeded, so this loop is still current and its task/context are stable.
        tc_pool_task task = atomic_load(&pool->task);
        void *context = atomic_load(&pool->context);
        task(context, (int64_t)index);
        atomic_fetch_add(&pool->completed, 1);
        ran++;
        seen = atomic_load(&pool->next);
    }
}

static void *helper_main(void *arg) {
    tc_pool *pool = (tc_pool *)arg;
    inside_pool_task = 1;  // a task that starts a loop runs it serially
    // Helpers only compute: never on subnormals, whatever the creating thread's mode (float_mode.c).
    tc_set_subnormal_flushing(1);
    // The value `next` had when the pool was made: a loop published before this thread got
    // here differs from it, so the helper joins that loop too instead of waiting for the next.
    uint64_t last = ((uint64_t)1 << 32) | LOCKED;
    while (!atomic_load(&pool->stop)) {
        uint64_t seen = atomic_load(&pool->next);
        if (seen != last) {
            run_chunks(pool, seen);
            last = seen;
            continue;
        }
        // Nothing new: poll for a while, then sleep until the next publish.
        int64_t deadline = now_ns() + pool->spin_ns;
        int found = 0;
        while (!found) {
            for (int i = 0; i < 64; i++) {
                TC_PAUSE();
                if (atomic_load(&pool->next) != last) { found = 1; break; }
            }
            if (!found && now_ns() > deadline) break;
        }
        if (found || atomic_load(&pool->stop)) continue;
        uint32_t ticket = atomic_load(&pool->wake);
        atomic_fetch_add(&pool->sleepers, 1);
        if (atomic_load(&pool->next) == last && !atomic_load(&pool->stop)) futex_wait(&pool->wake, ticket);
        atomic_fetch_sub(&pool->sleepers, 1);
    }
    return NULL;
}

tc_pool *tc_pool_create(int helpers, int spin_microseconds) {
    tc_pool *pool = (tc_pool *)calloc(1, sizeof(tc_pool));
    if (!pool) return NULL;
    atomic_init(&pool->next, ((uint64_t)1 << 32) | LOCKED);
    pthread_mutex_init(&pool->busy, NULL);
    pool->spin_ns = (int64_t)(spin_microseconds < 0 ? 0 : spin_microseconds) * 1000;
    pool->threads = helpers > 0 ? (pthread_t *)calloc((size_t)helpers, sizeof(pthread_t)) : NULL;
    for (int i = 0; i < helpers && pool->threads; i++) {
        if (pthread_create(&pool->threads[i], NULL, helper_main, pool) != 0) break;
        pool->helpers++;
    }
    return pool;
}

void tc_pool_destroy(tc_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->busy);
    atomic_store(&pool->stop, 1);
    atomic_fetch_add(&pool->wake, 1);
    futex_wake_all(&pool->wake);
    for (int i = 0; i < pool->helpers; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_unlock(&pool->busy);
    pthread_mutex_destroy(&pool->busy);
    free(pool->threads);
    free(pool);
}

int tc_pool_helpers(const tc_pool *pool) { return pool ? pool->helpers : 0; }

static void run_serially(int64_t chunks, tc_pool_task task, void *context) {
    for (int64_t c = 0; c < chunks; c++) task(context, c);
}

void tc_pool_run(tc_pool *pool, int64_t chunks, tc_pool_task task, void *context) {
    if (chunks <= 0) return;
    if (!pool || pool->helpers == 0 || chunks == 1 || chunks >= (int64_t)LOCKED || inside_pool_task ||
        pthread_mutex_trylock(&pool->busy) != 0) {
        int outer = inside_pool_task;
        inside_pool_task = 1;
        run_serially(chunks, task, context);
        inside_pool_task = outer;
        return;
    }
    uint64_t generation = (atomic_load(&pool->next) >> 32) + 1;
    atomic_store(&pool->next, (generation << 32) | LOCKED);
    atomic_store(&pool->task, task);
    atomic_store(&pool->context, context);
    atomic_store(&pool->chunks, chunks);
    atomic_store(&pool->completed, 0);
    atomic_store(&pool->next, generation << 32);
    atomic_fetch_add(&pool->wake, 1);
    if (atomic_load(&pool->sleepers) > 0) futex_wake_all(&pool->wake);

    inside_pool_task = 1;
    run_chunks(pool, atomic_load(&pool->next));
    inside_pool_task = 0;
    // Chunks still running on helpers finish within their own length; after a long wait the
    // helper was probably descheduled, so stop burning the core it needs.
    int64_t spins = 0;
    while (atomic_load(&pool->completed) < chunks) {
        if (++spins < 20000) TC_PAUSE(); else sched_yield();
    }
    pthread_mutex_unlock(&pool->busy);
}

typedef struct {
    _Atomic int arrived, flushing, timed_out;
    int expected;
    int64_t deadline_ns;
} flushing_probe;

// Every chunk waits until all threads hold one, so each thread runs exactly one; a chunk that
// stops waiting at the deadline means some thread ran two (a helper never came, or the loop ran
// serially), and the count no longer says anything about every thread.
static void flushing_probe_task(void *context, int64_t chunk) {
    (void)chunk;
    flushing_probe *probe = (flushing_probe *)context;
    atomic_fetch_add(&probe->arrived, 1);
    if (tc_subnormal_flushing()) atomic_fetch_add(&probe->flushing, 1);
    while (atomic_load(&probe->arrived) < probe->expected) {
        if (now_ns() >= probe->deadline_ns) { atomic_store(&probe->timed_out, 1); return; }
        TC_PAUSE();
    }
}

int tc_pool_subnormal_flushing(tc_pool *pool, int *threads) {
    flushing_probe probe;
    atomic_init(&probe.arrived, 0);
    atomic_init(&probe.flushing, 0);
    atomic_init(&probe.timed_out, 0);
    probe.expected = tc_pool_helpers(pool) + 1;
    probe.deadline_ns = now_ns() + 2000000000;
    tc_pool_run(pool, probe.expected, flushing_probe_task, &probe);
    *threads = atomic_load(&probe.timed_out) ? -1 : probe.expected;
    return atomic_load(&probe.flushing);
}
