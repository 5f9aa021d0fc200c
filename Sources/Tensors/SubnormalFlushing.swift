import CKernels
import Foundation

/// Subnormal floats read and written as zero on every thread that computes.
///
/// Intel cores take a microcode assist for every subnormal operand or result of a vector
/// instruction; a Qwen3-shaped training step whose softmax probabilities had underflowed ran
/// 70.3 s instead of 4.25 s on an Emerald Rapids Xeon. The mode (x86 FTZ and DAZ) lives in each
/// thread's control register and a new thread copies its creator's, so `enableForProcess()`
/// sets it on the calling thread before the computing threads exist and restarts the ones
/// that already do (OpenBLAS's, started by its library constructor). The pool's helpers set it
/// themselves; OpenMP threads (oneDNN's) are created by threads that have it. The kernels also
/// write exact zeros where exp underflows, so the results do not depend on the mode.
/// docs/architecture.md, "Subnormal floats".
///
/// Usage: `SubnormalFlushing.enableForProcess()` first in `main`, after any re-exec.
public enum SubnormalFlushing {
    /// Whether OpenBLAS's server threads were stopped, to restart from a flushing thread (false
    /// for an OpenBLAS without `blas_thread_shutdown_`: its threads, if any, keep their mode).
    private static let restartedOpenBLASThreads: Bool = {
        tc_set_subnormal_flushing(1)
        return tc_openblas_restart_threads() != 0
    }()

    /// Turns flushing on for the calling thread and the threads it will create, and restarts
    /// OpenBLAS's threads from it. Runs once per process; `ThreadPool.shared` calls it too.
    public static func enableForProcess() { _ = restartedOpenBLASThreads }

    /// Whether `enableForProcess()` could restart OpenBLAS's threads.
    public static var openBLASThreadsRestarted: Bool { restartedOpenBLASThreads }

    /// Whether the calling thread flushes subnormals (FTZ and DAZ both on, on x86).
    public static var isOnForCurrentThread: Bool { tc_subnormal_flushing() != 0 }

    /// Turns flushing on or off for the calling thread only (tests that prove the kernels write
    /// zeros without the mode's help).
    public static func setForCurrentThread(_ on: Bool) { tc_set_subnormal_flushing(on ? 1 : 0) }

    /// How many of the shared pool's threads (caller included) flush subnormals, out of how many.
    /// `threads` is -1 when a helper did not take its probe chunk within 2 s.
    public static func poolThreads() -> (threads: Int, flushing: Int) {
        ThreadPool.shared.subnormalFlushing()
    }

    /// How many threads of the OpenMP team that oneDNN would use from the calling thread flush
    /// subnormals, out of how many; nil when no OpenMP runtime is loaded.
    public static func openMPThreads() -> (threads: Int, flushing: Int)? {
        var threads: Int32 = 0
        let flushing = tc_openmp_subnormal_flushing(&threads)
        return flushing < 0 ? nil : (Int(threads), Int(flushing))
    }
}
