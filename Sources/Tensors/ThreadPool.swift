import Dispatch
import Foundation

/// Splits work that OpenBLAS does not cover across the machine's cores.
///
/// Backed by libdispatch's concurrent pool, whose width is the number of active cores; work is
/// handed out in contiguous chunks so each task calls a C kernel over a range, never a closure
/// per element.
///
/// Usage: `ThreadPool.shared.parallelFor(rows, minChunk: 16) { range in kernel(range) }`
public final class ThreadPool: @unchecked Sendable {
    public static let shared = ThreadPool(workers: ProcessInfo.processInfo.activeProcessorCount)

    /// Number of workers work is split across.
    public let workers: Int

    public init(workers: Int) { self.workers = max(1, workers) }

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
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
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
        DispatchQueue.concurrentPerform(iterations: count, execute: body)
    }
}
