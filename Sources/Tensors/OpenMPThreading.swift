import Foundation

/// How the OpenMP threads inside oneDNN share the cores with the toolkit's own pool.
///
/// oneDNN (Debian's OpenMP build) runs its products on libgomp's threads; the toolkit runs
/// attention, norms and elementwise work on `ThreadPool`. With libgomp's default wait policy
/// its idle threads spin after each product while the pool works on the same cores: on a
/// 2-core AMX Xeon, `OMP_WAIT_POLICY=PASSIVE` trained 10-25% faster (chat 8x256 389-399 against
/// 352-357 tok/s, three alternating runs; docs/benchmarks.md). libgomp reads its variables
/// when it loads, before `main`, so they are set by restarting the process once, together with
/// OpenBLAS's core (`OpenBLASCoreSelection.ensureFastKernels`), and only where oneDNN computes
/// by default: CPUs with AMX. A variable the user set is never overridden. Child processes
/// inherit both variables; `OMP_NUM_THREADS` is also what Debian's OpenBLAS reads at load when
/// `OPENBLAS_NUM_THREADS` is unset, which changes nothing here: the toolkit sets OpenBLAS's
/// thread count itself (`GEMM.threading`).
///
/// Usage: `let changes = OpenMPThreading.environment(for: .detected, current: ProcessInfo.processInfo.environment)`
public enum OpenMPThreading {
    public static let waitPolicyVariable = "OMP_WAIT_POLICY"
    public static let threadCountVariable = "OMP_NUM_THREADS"
    /// The wait policy set when the user has not chosen one.
    public static let defaultWaitPolicy = "PASSIVE"
    /// Marks variables the toolkit set itself (comma-separated names), for `doctor`.
    public static let setByToolkitVariable = "THOUGHTCRIME_OPENMP_SET"

    /// Whether oneDNN computes by default on this CPU class: only with AMX does `auto` pick a
    /// oneDNN storage (docs/architecture.md, "Weight storage by CPU"). Elsewhere a user who
    /// forces `onednn-bf16` sets `OMP_WAIT_POLICY` as they like.
    public static func oneDNNComputes(on cpu: CPUFeatures) -> Bool { cpu.hasAMX }

    /// The OpenMP variables to set before libgomp loads (pure, so every CPU class is testable):
    /// the passive wait policy, and as many threads as the pool has (`ThreadPool.threadsPerProcess`,
    /// which divides the cores among the ranks of an `mpirun` job), each unless the user set it.
    public static func environment(for cpu: CPUFeatures, current env: [String: String],
                                   poolThreads: Int) -> [String: String] {
        guard oneDNNComputes(on: cpu) else { return [:] }
        var changes: [String: String] = [:]
        if env[waitPolicyVariable] == nil { changes[waitPolicyVariable] = defaultWaitPolicy }
        if env[threadCountVariable] == nil { changes[threadCountVariable] = String(max(1, poolThreads)) }
        return changes
    }

    /// The wait policy in force for this process and who chose it.
    public static var current: (waitPolicy: String, source: String) {
        let env = ProcessInfo.processInfo.environment
        guard let policy = env[waitPolicyVariable], !policy.isEmpty else {
            let why = oneDNNComputes(on: .detected) ? "not set: the restart that sets it did not happen" : "oneDNN does not compute by default on this CPU (no AMX), so it is left alone"
            return ("libgomp's default (spin, then sleep)", why)
        }
        let setByToolkit = (env[setByToolkitVariable] ?? "").split(separator: ",").contains { $0 == waitPolicyVariable }
        return (policy, setByToolkit ? "set by ThoughtCrime: oneDNN's threads sleep while the pool works; set \(waitPolicyVariable) to override" : "set by the user")
    }
}
