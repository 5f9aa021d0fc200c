import Foundation

/// One optimiser step's figures, as logged and written to metrics.jsonl (fields in
/// docs/config-reference.md, "metrics.jsonl").
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
    /// Wall-clock time the step ended.
    public var time: Date = Date()
    /// Jobs of several processes only: seconds the step waited for the slowest process, then
    /// seconds it spent summing gradients and figures across processes.
    public var waitSeconds: Double? = nil
    public var reduceSeconds: Double? = nil
    /// Jobs of several processes only: their number.
    public var processes: Int? = nil

    public init(step: Int, totalSteps: Int, epoch: Int, loss: Double, learningRate: Double, gradNorm: Double,
                tokensPerSecond: Double, tokensSeen: Int, validationLoss: Double?, elapsedSeconds: Double,
                rewardAccuracy: Double? = nil, rewardMargin: Double? = nil, time: Date = Date()) {
        self.step = step; self.totalSteps = totalSteps; self.epoch = epoch; self.loss = loss
        self.learningRate = learningRate; self.gradNorm = gradNorm; self.tokensPerSecond = tokensPerSecond
        self.tokensSeen = tokensSeen; self.validationLoss = validationLoss; self.elapsedSeconds = elapsedSeconds
        self.rewardAccuracy = rewardAccuracy; self.rewardMargin = rewardMargin; self.time = time
    }

    var json: [String: Any] {
        var o: [String: Any] = [
            "step": step, "epoch": epoch, "loss": loss, "lr": learningRate, "grad_norm": gradNorm,
            "tokens_per_s": tokensPerSecond, "tokens_seen": tokensSeen, "elapsed_s": elapsedSeconds,
            "time": MetricsTime.string(time),
        ]
        if let v = validationLoss { o["val_loss"] = v }
        if let v = rewardAccuracy { o["reward_accuracy"] = v }
        if let v = rewardMargin { o["reward_margin"] = v }
        if let v = waitSeconds { o["wait_s"] = v }
        if let v = reduceSeconds { o["reduce_s"] = v }
        if let v = processes { o["processes"] = v }
        return o
    }
}

/// metrics.jsonl's wall-clock field: UTC, ISO 8601 with milliseconds.
enum MetricsTime {
    static func string(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    /// Seconds since 1970 of a `time` field, nil when it is not one.
    static func seconds(_ text: String) -> Double? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date.timeIntervalSince1970 }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)?.timeIntervalSince1970
    }
}

/// Shows training progress: a live bar on a terminal, plain lines otherwise.
public protocol ProgressReporter: AnyObject {
    func message(_ text: String)
    func step(_ metrics: StepMetrics)
    /// A checkpoint was written after `step`.
    func checkpointWritten(_ path: String, step: Int)
    func finish()
}

extension ProgressReporter {
    public func checkpointWritten(_ path: String, step: Int) {}
}

/// A single redrawn line that always fits the terminal: step/total, loss, learning rate,
/// tokens/s, epoch, elapsed time, ETA, the last validation loss and the last checkpoint.
/// Lower-priority fields are dropped first when the terminal is narrow, and the line is never
/// longer than the width less one column, so it cannot wrap and leave fragments behind.
public final class ProgressBar: ProgressReporter {
    private var active = false
    private var lastValidation: Double?
    private var lastCheckpointStep: Int?
    private var last: StepMetrics?
    private let width: () -> Int
    private let write: (String) -> Void

    /// `width` gives the terminal's columns (default: asked of stderr at each redraw, so a
    /// resized window is followed); `write` receives the bytes for stderr.
    public init(width: (() -> Int)? = nil, write: ((String) -> Void)? = nil) {
        self.width = width ?? { TerminalSize.columns(of: STDERR_FILENO) ?? 80 }
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
    }

    public func message(_ text: String) {
        write((active ? "\r\u{1B}[K" : "") + text + "\n")
        active = false
        if let last { draw(last) }
    }

    public func step(_ m: StepMetrics) {
        if let v = m.validationLoss { lastValidation = v }
        last = m
        draw(m)
    }

    public func checkpointWritten(_ path: String, step: Int) {
        lastCheckpointStep = step
        if let last { draw(last) }
    }

    public func finish() {
        if active { write("\n") }
        active = false
        last = nil
    }

    /// The visible line for `m` in `columns` columns (without the control bytes).
    public func line(_ m: StepMetrics, columns: Int) -> String {
        let room = max(columns - 1, 10)
        let eta = m.step > 0 ? m.elapsedSeconds / Double(m.step) * Double(max(0, m.totalSteps - m.step)) : 0
        let count = "\(m.step)/\(m.totalSteps)"
        // Fields in the order shown; `priority` lower = kept longer.
        var fields: [(text: String, priority: Int)] = [
            (String(format: "loss %.4f", m.loss), 0),
            (String(format: "lr %.1e", m.learningRate), 4),
            (String(format: "%.0f tok/s", m.tokensPerSecond), 3),
            ("ep \(m.epoch)", 5),
            ("\(formatDuration(m.elapsedSeconds)) elapsed", 2),
            ("ETA \(formatDuration(eta))", 1),
        ]
        if let v = lastValidation { fields.append((String(format: "val %.4f", v), 2)) }
        if let c = lastCheckpointStep { fields.append(("saved @\(c)", 6)) }

        func render(barWidth: Int, keep: [(text: String, priority: Int)]) -> String {
            var head = count
            if barWidth > 0 {
                let done = m.totalSteps > 0 ? min(barWidth, barWidth * m.step / m.totalSteps) : 0
                head = "[" + String(repeating: "=", count: done) + (done < barWidth ? ">" : "")
                    + String(repeating: " ", count: max(0, barWidth - done - 1)) + "] " + count
            }
            return ([head] + keep.map(\.text)).joined(separator: " ")
        }
        var keep = fields
        for barWidth in [24, 16, 10] {
            let text = render(barWidth: barWidth, keep: keep)
            if text.count <= room { return text }
        }
        // Drop fields from the least important up, then the bar, then cut.
        while true {
            let text = render(barWidth: 0, keep: keep)
            if text.count <= room { return text }
            guard let worst = keep.map(\.priority).max(), worst > 0 else { return String(text.prefix(room)) }
            if let index = keep.lastIndex(where: { $0.priority == worst }) { keep.remove(at: index) }
        }
    }

    private func draw(_ m: StepMetrics) {
        write("\r\u{1B}[K" + line(m, columns: width()))
        active = true
    }
}

/// The terminal's width, when the descriptor is a terminal.
public enum TerminalSize {
    public static func columns(of descriptor: Int32) -> Int? {
        var size = winsize()
        guard ioctl(descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }
}

/// One log line every `every` steps (and whenever validation ran), and one per checkpoint.
/// Shows nothing: the progress of every rank of a data-parallel job but rank 0.
public final class SilentProgress: ProgressReporter {
    public init() {}
    public func message(_ text: String) {}
    public func step(_ m: StepMetrics) {}
    public func finish() {}
}

public final class PlainProgress: ProgressReporter {
    let every: Int
    private let write: (String) -> Void
    public init(every: Int, write: ((String) -> Void)? = nil) {
        self.every = max(1, every)
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
    }

    public func message(_ text: String) { write(text + "\n") }

    public func step(_ m: StepMetrics) {
        guard m.step % every == 0 || m.step == m.totalSteps || m.validationLoss != nil else { return }
        var line = String(format: "step %d/%d epoch %d loss %.4f lr %.3e grad_norm %.3f %.0f tok/s", m.step, m.totalSteps, m.epoch, m.loss, m.learningRate, m.gradNorm, m.tokensPerSecond)
        if let v = m.validationLoss { line += String(format: " val_loss %.4f", v) }
        line += " elapsed \(formatDuration(m.elapsedSeconds))"
        message(line)
    }

    public func checkpointWritten(_ path: String, step: Int) { message("checkpoint step \(step): \(path)") }

    public func finish() {}
}

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}

/// Stops a run cleanly on SIGINT, SIGTERM or SIGUSR1: the trainer finishes its optimiser step,
/// writes a checkpoint and returns. SIGUSR1 is for `mpirun` jobs: mpirun forwards it to every
/// process, while SIGINT or SIGTERM sent to mpirun end the job at once.
public enum InterruptFlag {
    nonisolated(unsafe) static var raised: sig_atomic_t = 0
    /// 1 while a run can stop cleanly at its next step boundary (checkpointing on the way).
    nonisolated(unsafe) static var deferring: sig_atomic_t = 0

    /// Installs handlers for SIGINT, SIGTERM and SIGUSR1. While training steps run, the first signal
    /// only raises the flag: the step finishes, a checkpoint is written and the run stops. A
    /// second signal, or any signal before training starts (loading, tokenising, planning,
    /// where there is nothing to save), ends the process at once, as the signal's default.
    public static func install() {
        signal(SIGINT, InterruptFlag.handle)
        signal(SIGTERM, InterruptFlag.handle)
        signal(SIGUSR1, InterruptFlag.handle)
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
