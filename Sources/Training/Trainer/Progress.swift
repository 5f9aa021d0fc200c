import Foundation

/// One optimiser step's figures, as logged and written to metrics.jsonl.
public struct StepMetrics: Equatable, Sendable {
    public var step: Int
    public var totalSteps: Int
    public var epoch: Int
    public var loss: Double
    public var learningRate: Double
    public var gradNorm: Double
    public var tokensPerSecond: Double
    public var tokensSeen: Int
    public var validationLoss: Double?
    public var elapsedSeconds: Double
    /// DPO only: share of the step's pairs with a preference (label smoothing below 0.5)
    /// whose implicit reward prefers the chosen answer.
    public var rewardAccuracy: Double? = nil
    /// DPO only: mean implicit reward margin (beta-scaled log-ratio, chosen minus rejected).
    public var rewardMargin: Double? = nil

    var json: [String: Any] {
        var o: [String: Any] = [
            "step": step, "epoch": epoch, "loss": loss, "lr": learningRate, "grad_norm": gradNorm,
            "tokens_per_s": tokensPerSecond, "tokens_seen": tokensSeen, "elapsed_s": elapsedSeconds,
        ]
        if let v = validationLoss { o["val_loss"] = v }
        if let v = rewardAccuracy { o["reward_accuracy"] = v }
        if let v = rewardMargin { o["reward_margin"] = v }
        return o
    }
}

/// Shows training progress: a live bar on a terminal, plain lines otherwise.
public protocol ProgressReporter: AnyObject {
    func message(_ text: String)
    func step(_ metrics: StepMetrics)
    func finish()
}

/// A single redrawn line: step/total, loss, learning rate, tokens/s, ETA.
public final class ProgressBar: ProgressReporter {
    private var active = false
    public init() {}

    public func message(_ text: String) {
        if active { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        FileHandle.standardError.write(Data((text + "\n").utf8))
        active = false
    }

    public func step(_ m: StepMetrics) {
        let width = 24
        let done = m.totalSteps > 0 ? min(width, width * m.step / m.totalSteps) : 0
        let bar = String(repeating: "=", count: done) + (done < width ? ">" : "") + String(repeating: " ", count: max(0, width - done - 1))
        let eta = m.step > 0 ? m.elapsedSeconds / Double(m.step) * Double(max(0, m.totalSteps - m.step)) : 0
        var line = String(format: "\r\u{1B}[K[%@] %d/%d loss %.4f lr %.2e %.0f tok/s ETA %@", bar, m.step, m.totalSteps, m.loss, m.learningRate, m.tokensPerSecond, formatDuration(eta))
        if let v = m.validationLoss { line += String(format: " val %.4f", v) }
        FileHandle.standardError.write(Data(line.utf8))
        active = true
    }

    public func finish() {
        if active { FileHandle.standardError.write(Data("\n".utf8)) }
        active = false
    }
}

/// One log line every `every` steps (and whenever validation ran).
public final class PlainProgress: ProgressReporter {
    let every: Int
    public init(every: Int) { self.every = max(1, every) }

    public func message(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

    public func step(_ m: StepMetrics) {
        guard m.step % every == 0 || m.step == m.totalSteps || m.validationLoss != nil else { return }
        var line = String(format: "step %d/%d epoch %d loss %.4f lr %.3e grad_norm %.3f %.0f tok/s", m.step, m.totalSteps, m.epoch, m.loss, m.learningRate, m.gradNorm, m.tokensPerSecond)
        if let v = m.validationLoss { line += String(format: " val_loss %.4f", v) }
        message(line)
    }

    public func finish() {}
}

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}

/// Stops a run cleanly on SIGINT or SIGTERM: the trainer finishes its optimiser step, writes a
/// checkpoint and returns.
public enum InterruptFlag {
    nonisolated(unsafe) static var raised: sig_atomic_t = 0
    /// 1 while a run can stop cleanly at its next step boundary (checkpointing on the way).
    nonisolated(unsafe) static var deferring: sig_atomic_t = 0

    /// Installs handlers for SIGINT and SIGTERM. While training steps run, the first signal
    /// only raises the flag: the step finishes, a checkpoint is written and the run stops. A
    /// second signal, or any signal before training starts (loading, tokenising, planning,
    /// where there is nothing to save), ends the process at once, as the signal's default.
    public static func install() {
        signal(SIGINT, InterruptFlag.handle)
        signal(SIGTERM, InterruptFlag.handle)
    }

    private static let handle: @convention(c) (Int32) -> Void = { sig in
        if InterruptFlag.deferring == 0 || InterruptFlag.raised != 0 {
            signal(sig, SIG_DFL)
            Glibc.raise(sig)
            return
        }
        InterruptFlag.raised = 1
    }

    /// Called by the trainer around its step loop.
    static func setDeferring(_ on: Bool) { deferring = on ? 1 : 0 }

    public static var isRaised: Bool { raised != 0 }
    public static func raise() { raised = 1 }
    public static func clear() { raised = 0 }
}
