/// Why a run could not start, continue or finish.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    case runDirectoryExists(path: String)
    case fingerprintMismatch(what: String, checkpoint: String, configured: String, path: String)
    case nonFinite(step: Int, quantity: String, lastCheckpoint: String?)
    case unsupported(String)
    case io(path: String, reason: String)
    /// `resume` on a directory with neither a checkpoint nor the run's resolved config.
    case nothingToResume(path: String)
    /// Writing a checkpoint failed (a full disk, a file size limit); nothing partial was kept.
    case checkpointFailed(step: Int, reason: String, runDirectory: String, lastCheckpoint: String?)
    /// Appending to metrics.jsonl failed (a full disk, a file size limit); the partial line was removed.
    case metricsFailed(path: String, reason: String, runDirectory: String, lastCheckpoint: String?)

    public var description: String {
        switch self {
        case .runDirectoryExists(let path):
            return "\(path) already holds a run; continue it with `thoughtcrime resume \(path)` or choose another run.name"
        case let .fingerprintMismatch(what, checkpoint, configured, path):
            return "the checkpoint was trained on a different \(what) (checkpoint \(checkpoint), configured \(path): \(configured)); refusing to resume"
        case let .nonFinite(step, quantity, last):
            return "training stopped at step \(step): the \(quantity) is NaN or infinite" + (last.map { "; the last good checkpoint is \($0)" } ?? "; no checkpoint was written yet") + ". Try a lower learning rate or gradient clipping."
        case .unsupported(let m): return m
        case let .io(path, reason): return "\(path): \(reason)"
        case let .checkpointFailed(step, reason, runDirectory, last):
            let kept = last.map { "the last complete checkpoint is \($0)" } ?? "no checkpoint was written yet"
            return "could not write the checkpoint of step \(step): \(reason). Nothing partial was kept; \(kept). Free space (or raise the file size limit, `ulimit -f`), then continue with `thoughtcrime resume \(runDirectory)`"
        case let .metricsFailed(path, reason, runDirectory, last):
            let kept = last.map { "the last complete checkpoint is \($0)" } ?? "no checkpoint was written yet"
            return "could not append to \(path): \(reason). The partial line was removed, so the file ends at the previous record; \(kept). Free space (or raise the file size limit, `ulimit -f`), then continue with `thoughtcrime resume \(runDirectory)`"
        case .nothingToResume(let path):
            return "\(path) holds no checkpoint and no config.resolved.yaml, so there is no run to resume; start one with `thoughtcrime finetune --config FILE`"
        }
    }
}
