import Foundation

/// Named points in writing a run (its directory, resolved config, metrics and checkpoints) where
/// a test can have the process killed, to prove that a kill at any of them loses nothing.
///
/// Set `THOUGHTCRIME_FAULT_INJECT=POINT` (or `POINT#N` for its N-th occurrence) and the process
/// sends itself SIGKILL on reaching it; unset, each point costs one dictionary lookup. Points:
/// `run-directory-created`, `config-temp-written`, `config-renamed`, `metrics-appended`,
/// `checkpoint-temp-written`, `checkpoint-renamed`, `latest-temp-written`, `latest-renamed`.
/// `POINT:hang` makes the process sleep there for ever instead, as a hostile file can make a
/// reader hang: `checkpoint-child-reading` (in the isolated checkpoint reader) and
/// `model-loading` (a trainer about to load its model) are for that.
///
/// Usage: `FaultInjection.point("checkpoint-temp-written")`
public enum FaultInjection {
    private static let requested: (name: String, occurrence: Int, hangs: Bool)? = {
        guard var spec = ProcessInfo.processInfo.environment["THOUGHTCRIME_FAULT_INJECT"], !spec.isEmpty else { return nil }
        let hangs = spec.hasSuffix(":hang")
        if hangs { spec.removeLast(":hang".count) }
        let parts = spec.split(separator: "#", maxSplits: 1)
        return (String(parts[0]), parts.count == 2 ? Int(parts[1]) ?? 1 : 1, hangs)
    }()
    nonisolated(unsafe) private static var reached: [String: Int] = [:]

    public static func point(_ name: String) {
        guard let requested, requested.name == name else { return }
        reached[name, default: 0] += 1
        guard reached[name] == requested.occurrence else { return }
        if requested.hangs {
            while true { sleep(3600) }
        }
        kill(getpid(), SIGKILL)
    }
}
