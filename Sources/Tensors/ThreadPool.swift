import CKernels
import Foundation

/// Splits work that OpenBLAS does not cover across the machine's cores.
///
/// Backed by `tc_pool` (CKernels/pool.c): the caller plus `workers - 1` helper threads that
/// poll for `THOUGHTCRIME_POOL_SPIN_US` microseconds (default 100) after a loop before they
/// sleep, since a token of decoding runs ~150 loops of 10-50 us and a futex wake-up per loop
/// (libdispatch's way) cost about a fifth of the decoding time. Work is handed out in
/// contiguous chunks so each task calls a C kernel over a range, never a closure per element.
/// A loop started inside a task, or while another thread's loop runs, runs serially.
///
/// Usage: `ThreadPool.shared.parallelFor(rows, minChunk: 16) { range in kernel(range) }`
public final class ThreadPool: @unchecked Sendable {
    public static let shared = ThreadPool(workers: ThreadPool.threadsPerProcess(ProcessInfo.processInfo.environment))

    /// Threads each process computes with: `THOUGHTCRIME_THREADS` when set, else the cores
    /// this process may run on shared among the job's processes on this machine (as `mpirun`
    /// and Slurm announce them), so several ranks on one node do not oversubscribe it.
    /// A launcher that bound the process to some cores (mpirun's default, srun --cpu-bind) has
    /// divided them already: then they are used as they are.
    public static func threadsPerProcess(_ environment: [String: String], cores: Int = ProcessInfo.processInfo.activeProcessorCount,
                                         machineCores: Int = ProcessInfo.processInfo.processorCount) -> Int {
        if let n = environment["THOUGHTCRIME_THREADS"].flatMap(Int.init), n > 0 { return n }
        guard cores >= machineCores else { return max(1, cores) }
        let processes = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init)
            ?? environment["SLURM_NTASKS_PER_NODE"].flatMap(Int.init) ?? 1
        return max(1, cores / max(1, processes))
    }

    /// Number of workers work is split across.
    public let workers: Int

    private let pool: OpaquePointer?

    public init(workers: Int) {
        SubnormalFlushing.enableForProcess()
        self.workers = max(1, workers)
        let spin = ProcessInfo.processInfo.environment["THOUGHTCRIME_POOL_SPIN_US"].flatMap { Int32($0) } ?? 100
        pool = self.workers > 1 ? tc_pool_create(Int32(self.workers - 1), spin) : nil
    }

    deinit { tc_pool_destroy(pool) }

    /// Threads of this pool (caller included) and how many of them flush subnormals.
    public func subnormalFlushing() -> (threads: Int, flushing: Int) {
        guard let pool else { return (1, SubnormalFlushing.isOnForCurrentThread ? 1 : 0) }
        var threads: Int32 = 0
        let flushing = tc_pool_subnormal_flushing(pool, &threads)
        return (Int(threads), Int(flushing))
    }

    /// Runs `body(c)` for every c in 0..<count across the pool.
    private func run(_ count: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var task = body
            withUnsafeMutablePointer(to: &task) { context in
                tc_pool_run(pool, Int64(count), { context, chunk in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(chunk))
                }, UnsafeMutableRawPointer(context))
            }
        }
    }

    /// Calls `body` on disjoint ranges covering `0..<count`, in parallel when there is enough
    /// work. Ranges hold at least `minChunk` items (except possibly the last).
    ///
    /// `chunksPerWorker` > 1 cuts the work finer than one range per worker; the ranges are
    /// handed out as workers become free, so a worker that the OS schedules late (on a machine
    /// shared with other processes) delays the loop by one small range instead of half the work.
    public func parallelFor(_ count: Int, minChunk: Int = 1, chunksPerWorker: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(workers * max(1, chunksPerWorker), max(1, count / max(minChunk, 1)))
        if chunks == 1 {
            body(0..<count)
            return
        }
        let per = (count + chunks - 1) / chunks
        run(chunks) { c in
            let lo = c * per
            let hi = min(count, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Calls `body(i)` for every `i` in `0..<count` as its own task; for coarse units of work
    /// such as one attention head.
    public func forEach(_ count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        if count == 1 || workers == 1 {
            for i in 0..<count { body(i) }
            return
        }
        run(count, body)
    }
}
