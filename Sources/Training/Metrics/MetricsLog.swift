import Foundation

/// A run's metrics.jsonl, read back: one entry per line (step 0 holds only the validation
/// before training). Fields are docs/config-reference.md's "metrics.jsonl".
///
/// Usage: `let log = try MetricsLog(runDirectory: "checkpoints/medical")`
public struct MetricsLog: Sendable {
    public struct Entry: Equatable, Sendable {
        public var step: Int
        public var epoch: Int?
        public var loss: Double?
        public var learningRate: Double?
        public var gradNorm: Double?
        public var tokensPerSecond: Double?
        public var tokensSeen: Int?
        public var validationLoss: Double?
        public var elapsedSeconds: Double?
        public var time: String?
        public var testLoss: Double? = nil

        /// The entry of one parsed metrics line.
        public init(step: Int, json o: [String: Any]) {
            self.step = step
            epoch = o["epoch"] as? Int
            loss = o["loss"] as? Double
            learningRate = o["lr"] as? Double
            gradNorm = o["grad_norm"] as? Double
            tokensPerSecond = o["tokens_per_s"] as? Double
            tokensSeen = o["tokens_seen"] as? Int
            validationLoss = o["val_loss"] as? Double
            elapsedSeconds = o["elapsed_s"] as? Double
            time = o["time"] as? String
            testLoss = o["test_loss"] as? Double
        }
    }

    /// The run's name (its directory's last component).
    public var name: String
    public var path: String
    public var entries: [Entry]

    public init(runDirectory: String) throws {
        let file = (runDirectory as NSString).appendingPathComponent("metrics.jsonl")
        try self.init(file: file, name: ((runDirectory as NSString).standardizingPath as NSString).lastPathComponent)
    }

    public init(file: String, name: String) throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw TrainingError.io(path: file, reason: "cannot read (is this a run directory?)")
        }
        self.name = name
        path = file
        var entries: [Entry] = []
        let lines = data.split(separator: UInt8(ascii: "\n"))
        for (i, line) in lines.enumerated() {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], let step = o["step"] as? Int else {
                // A run killed mid-write leaves a partial last line; anything else is damage.
                if i == lines.count - 1 && data.last != UInt8(ascii: "\n") { continue }
                throw TrainingError.io(path: file, reason: "line \(i + 1) is not a metrics object with a step")
            }
            entries.append(Entry(step: step, json: o))
        }
        self.entries = entries
    }
}
