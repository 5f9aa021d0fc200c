import Foundation

/// Wall-clock seconds of one or more training steps, split by where they went: each recorded
/// op's forward and backward, and any phase the caller wraps in `measure` (the optimiser,
/// clipping).
///
/// The forward time of an op is the time since the previous op produced its output, so work
/// between ops (reshapes, bookkeeping) is charged to the op that follows it. `unaccounted`
/// is what the caller's own total holds beyond the recorded parts.
///
/// Usage:
/// ```
/// let profile = StepProfile()
/// let tape = Tape(profile: profile)
/// ... forward, tape.backward(loss) ...
/// profile.measure("optimizer") { try optimizer.step(learningRate: lr) }
/// print(profile.seconds["backward linear(frozen+lowRank)"] ?? 0)
/// ```
public final class StepProfile {
    /// Seconds per part, keyed "forward OP", "backward OP" or a name given to `measure`.
    public private(set) var seconds: [String: Double] = [:]
    private var mark: Double

    public init() { mark = StepProfile.now() }

    /// Adds `interval` seconds to `part`.
    public func add(_ part: String, _ interval: Double) { seconds[part, default: 0] += interval }

    /// Runs `body` and charges its wall time to `part`.
    public func measure<T>(_ part: String, _ body: () throws -> T) rethrows -> T {
        let t0 = StepProfile.now()
        defer { add(part, StepProfile.now() - t0) }
        return try body()
    }

    /// Starts the forward clock: the next op's forward time counts from here.
    public func startForward() { mark = StepProfile.now() }

    /// Charges the time since the last mark to `op`'s forward pass.
    func forwardFinished(_ op: String) {
        let t = StepProfile.now()
        add("forward " + op, t - mark)
        mark = t
    }

    /// Total of all parts.
    public var total: Double { seconds.values.reduce(0, +) }

    /// Seconds grouped by the cost categories docs/benchmarks.md reports: products (frozen
    /// projections with their LoRA factors), attention, norms, cross-entropy with its output
    /// head, other elementwise ops, and whatever else was measured by name.
    public var byCategory: [String: Double] {
        var out: [String: Double] = [:]
        for (part, s) in seconds { out[StepProfile.category(of: part), default: 0] += s }
        return out
    }

    static func category(of part: String) -> String {
        var op = part
        for prefix in ["forward ", "backward "] where op.hasPrefix(prefix) { op.removeFirst(prefix.count) }
        if op.hasPrefix("linear") || op == "matmul" { return "projections" }
        switch op {
        case "attention": return "attention"
        case "rmsNorm": return "norms"
        case "crossEntropy", "targetLogProbabilities": return "cross-entropy + head"
        case "rotary", "swiglu", "add", "mul", "scale", "sum", "reshape", "dropout", "embedding": return "elementwise"
        default: return op
        }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
