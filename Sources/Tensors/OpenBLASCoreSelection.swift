import COpenBLAS
import Foundation
import Logging

/// Makes sure OpenBLAS runs the kernels this CPU can run.
///
/// OpenBLAS built with DYNAMIC_ARCH picks its kernel set ("core") when the library loads, before
/// `main`. Debian's 0.3.21 does not know some newer CPUs (Intel family 6 model 207 among them)
/// and falls back to SSE3 "Prescott" kernels, about 8x slower for sgemm. The only remedy that
/// works after load is to restart the process with OPENBLAS_CORETYPE set, which
/// `ensureFastKernels` does once.
///
/// Usage (first line of `main`): `OpenBLASCoreSelection.ensureFastKernels()`
public enum OpenBLASCoreSelection {
    /// What to do about the core OpenBLAS chose.
    public enum Decision: Equatable, Sendable {
        /// The chosen core already uses the widest vector unit the CPU offers.
        case keep(core: String)
        /// The user set OPENBLAS_CORETYPE; it is never overridden.
        case respectUser(coreType: String)
        /// The chosen core is weaker than the CPU supports; restart with this OPENBLAS_CORETYPE.
        case restart(coreType: String, chosen: String)
    }

    /// Environment variable that marks the restarted process, so a restart happens at most once.
    public static let restartMarker = "THOUGHTCRIME_OPENBLAS_RESTARTED"

    /// Diagnostic: when set, `ensureFastKernels` treats OpenBLAS as having chosen this core, so
    /// the restart path can be exercised on a CPU OpenBLAS already detects correctly.
    public static let simulatedCoreVariable = "THOUGHTCRIME_OPENBLAS_SIMULATE_CORE"

    /// The OpenBLAS core name best matching the CPU's vector units, or nil when no better core
    /// than a generic one is known.
    public static func preferredCore(for cpu: CPUFeatures) -> String? {
        if cpu.hasAVX512 { return cpu.avx512bf16 ? "Cooperlake" : "SkylakeX" }
        if cpu.avx2 && cpu.fma && cpu.osSavesAVX { return "Haswell" }
        if cpu.avx && cpu.osSavesAVX { return "Sandybridge" }
        return nil
    }

    /// Ranks OpenBLAS x86-64 core names by the vector width of their sgemm kernels.
    public static func vectorTier(of core: String) -> Int {
        switch core.lowercased() {
        case "cooperlake", "sapphirerapids": return 4
        case "skylakex": return 3
        case "haswell", "zen", "skylake": return 2
        case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator": return 1
        default: return 0
        }
    }

    /// Pure decision, separated from the process state so it can be tested for any CPU.
    public static func decide(cpu: CPUFeatures, chosenCore: String, userCoreType: String?) -> Decision {
        if let user = userCoreType, !user.isEmpty { return .respectUser(coreType: user) }
        guard let preferred = preferredCore(for: cpu),
            vectorTier(of: chosenCore) < vectorTier(of: preferred)
        else { return .keep(core: chosenCore) }
        return .restart(coreType: preferred, chosen: chosenCore)
    }

    /// The core OpenBLAS is running with in this process.
    public static var activeCore: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Checks the active core and, when it is weaker than the CPU allows and the user has not
    /// chosen one, re-executes this binary with OPENBLAS_CORETYPE set; the same restart sets
    /// libgomp's variables where oneDNN computes (`OpenMPThreading`), which also need one.
    /// Returns only when no restart is needed or the restart failed (then the process goes on
    /// as it is, with a warning).
    public static func ensureFastKernels(logger: Logger = Logger(label: "thoughtcrime.openblas")) {
        let env = ProcessInfo.processInfo.environment
        // The real CPU: a core for features that THOUGHTCRIME_CPU_FEATURES only pretends to add would trap.
        let cpu = CPUFeatures.detected
        let chosen = env[simulatedCoreVariable].flatMap { $0.isEmpty ? nil : $0 } ?? activeCore
        let decision = decide(cpu: cpu, chosenCore: chosen, userCoreType: env["OPENBLAS_CORETYPE"])
        let openMP = OpenMPThreading.environment(for: cpu, current: env, poolThreads: ThreadPool.threadsPerProcess(env))
        var changes = openMP
        switch decision {
        case .keep(let core):
            logger.debug("OpenBLAS core \(core) suits \(cpu)")
        case .respectUser(let coreType):
            let note = env[restartMarker] != nil ? " (set by ThoughtCrime's restart)" : ""
            logger.debug("OPENBLAS_CORETYPE=\(coreType)\(note); OpenBLAS is running \(activeCore) on \(cpu)")
        case .restart(let coreType, let chosenCore):
            logger.debug("OpenBLAS chose \(chosenCore) on \(cpu); restarting with OPENBLAS_CORETYPE=\(coreType)")
            changes["OPENBLAS_CORETYPE"] = coreType
        }
        guard !changes.isEmpty else { return }
        guard env[restartMarker] == nil else {
            logger.warning("still not set after a restart: \(changes.keys.sorted().joined(separator: ", ")); continuing without")
            return
        }
        for (name, value) in changes { setenv(name, value, 1) }
        if !openMP.isEmpty { setenv(OpenMPThreading.setByToolkitVariable, openMP.keys.sorted().joined(separator: ","), 1) }
        setenv(restartMarker, "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returns only on failure; the process continues as it is.
        logger.warning("could not restart with \(changes.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")): errno \(errno)")
    }
}
