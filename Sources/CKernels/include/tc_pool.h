#ifndef TC_POOL_H
#define TC_POOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One unit of a parallel loop: `chunk` is in 0..<chunks of the call to tc_pool_run.
typedef void (*tc_pool_task)(void *context, int64_t chunk);

/// A fixed set of helper threads that spin briefly between loops and then sleep.
///
/// Decoding one token runs about 150 short parallel loops of 10-50 microseconds; waking a
/// sleeping thread for each costs about as much as the loop itself, so helpers keep polling
/// for `spin_microseconds` after a loop ends before they park on a futex.
typedef struct tc_pool tc_pool;

/// `helpers` threads besides the caller (0 runs everything on the caller).
tc_pool *tc_pool_create(int helpers, int spin_microseconds);

/// Runs task(context, c) for every c in 0..<chunks on the caller and the helpers and returns
/// when all have finished. Calls from inside a task, or while another thread's loop is running,
/// run serially on the calling thread instead (never deadlock).
void tc_pool_run(tc_pool *pool, int64_t chunks, tc_pool_task task, void *context);

/// Stops and joins the helpers and frees the pool (no loop may be running).
void tc_pool_destroy(tc_pool *pool);

/// Number of helper threads.
int tc_pool_helpers(const tc_pool *pool);

/// Runs one chunk on each of the caller and the helpers (each waits, at most 2 s, for the
/// others to start one) and returns how many of them flush subnormals (`tc_subnormal_flushing`);
/// *threads is helpers + 1, or -1 when some helper did not start its chunk in time.
int tc_pool_subnormal_flushing(tc_pool *pool, int *threads);

#ifdef __cplusplus
}
#endif

#endif
