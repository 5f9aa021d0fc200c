import Foundation

/// How the OpenMP threads inside oneDNN share the cores with the toolkit's own pool.
///
/// oneDNN (Debian's OpenMP build) runs its products on libgomp's threads; the toolkit runs
/// attention, norms and elementwise work on `ThreadPool`. With libgomp's default wait policy
/// its idle threads spin after each product while the pool works on the same cores: on a
/// 2-core AMX Xeon, `OMP_WAIT_POLICY=PASSIVE` trained 10-25% faster (chat 8x256 389-399 against
/// 352-357 tok/s, three alternating runs; docs/benchmarks.md). libgomp reads its variables
/// when it loads, before `main`, so they are set by restarting the process once, together with
/// OpenBLAS's core (`OpenBLASCoreSelection.ensureFastKernels`), and only where oneDNN computes:
/// CPUs with AVX512_BF16 or AMX. A variable the user set is never overridden.
///
/// Usage: `let changes = OpenMPThreading.environment(for: .detected, current: ProcessInfo.processInfo.environment)`
public enum OpenMPThreading {
    public static let waitPolicyVariable = "OMP_WAIT_POLICY"
    public static let threadCountVariable = "OMP_NUM_THREADS"
    /// The wait policy set when the user has not chosen one.
    public static let defaultWaitPolicy = "PASSIVE"
    /// Marks variables the toolkit set itself (comma-separated names), for `doctor`.
    public static let setByToolkitVariable = "THOUGHTCRIME_OPENMP_SET"

    /// Whether oneDNN can compute in bf16 on this CPU class, the only case where its threads run.
    public static func oneDNNComputes(on cpu: CPUFeatures) -> Bool { cpu.hasAVX512BF16 || cpu.hasAMX }

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
            let why = oneDNNComputes(on: .detected) ? "not set: the restart that sets it did not happen" : "oneDNN does not compute on this CPU (no AVX512_BF16 or AMX), so it is left alone"
            return ("libgomp's default (spin, then sleep)", why)
        }
        let setByToolkit = (env[setByToolkitVariable] ?? "").split(separator: ",").contains { $0 == waitPolicyVariable }
        return (policy, setByToolkit ? "set by ThoughtCrime: oneDNN's threads sleep while the pool works; set \(waitPolicyVariable) to override" : "set by the user")
    }
}
