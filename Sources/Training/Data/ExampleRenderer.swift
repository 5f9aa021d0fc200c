import Autodiff
import Tokenizers

/// A rendered training example: token ids and which of them the loss is computed on.
///
/// A preference pair is one example of two sequences laid end to end, chosen then rejected,
/// so that batching, shuffling and checkpoints treat the pair as a unit; attention and
/// positions restart at `pairBoundary` (`segmentLengths`).
public struct TokenizedExample: Equatable, Sendable {
    public var ids: [Int32]
    /// lossMask[i]: token i is a prediction target (the model is trained to produce it).
    public var lossMask: [Bool]
    /// Source line, for messages.
    public var line: Int
    /// For a preference pair, where the rejected sequence starts; nil for a single sequence.
    public var pairBoundary: Int?
    /// For a preference pair, the row's own label smoothing, if it has one.
    public var labelSmoothing: Double?

    public init(ids: [Int32], lossMask: [Bool], line: Int, pairBoundary: Int? = nil) {
        self.ids = ids; self.lossMask = lossMask; self.line = line; self.pairBoundary = pairBoundary
    }

    /// The pair of two sequences `chosen` then `rejected`.
    public init(chosen: TokenizedExample, rejected: TokenizedExample) {
        self.init(ids: chosen.ids + rejected.ids, lossMask: chosen.lossMask + rejected.lossMask,
                  line: chosen.line, pairBoundary: chosen.ids.count)
    }

    /// Lengths of the independent sequences: one, or chosen and rejected.
    public var segmentLengths: [Int] {
        guard let b = pairBoundary else { return [ids.count] }
        return [b, ids.count - b]
    }

    /// Targets aligned to input positions: position i predicts ids[i + 1] when that token
    /// carries loss, else `Tape.ignoreIndex`. The last position of each sequence never has one.
    public var targets: [Int32] {
        var t = [Int32](repeating: Tape.ignoreIndex, count: ids.count)
        for i in 0..<max(0, ids.count - 1) where lossMask[i + 1] && i + 1 != pairBoundary { t[i] = ids[i + 1] }
        return t
    }

    public var targetCount: Int { countTargets(before: ids.count) }

    /// For a pair, how many targets belong to the chosen sequence (they come first).
    public var chosenTargetCount: Int { countTargets(before: pairBoundary ?? ids.count) }

    /// Targets at positions below `end`, counted as `targets` sets them, without building it
    /// (the batch planner and the DPO step ask for counts on every micro-batch).
    private func countTargets(before end: Int) -> Int {
        var n = 0
        for i in 0..<max(0, min(end, ids.count - 1)) where lossMask[i + 1] && i + 1 != pairBoundary { n += 1 }
        return n
    }
}

/// Turns dataset rows into token ids and loss masks as the trainer sees them.
///
/// Chats go through the chat template with the configured chain-of-thought mode (disabled:
/// every assistant turn carries an empty think block); loss falls on assistant tokens unless
/// `train_on: all`. Completions are prompt + completion + EOS with loss on the completion.
///
/// Usage: `let r = ExampleRenderer(tokenizer: tok, template: .smolLM2, config: config.data)`
public struct ExampleRenderer {
    public let tokenizer: BPETokenizer
    public let template: ChatTemplate
    public let data: RunConfig.DataSection

    public init(tokenizer: BPETokenizer, template: ChatTemplate, data: RunConfig.DataSection) {
        self.tokenizer = tokenizer; self.template = template; self.data = data
    }

    var chainOfThought: Tokenizers.ChainOfThought {
        switch data.chainOfThought {
        case .disabled: return .disabled
        case .disabledEmptyBlockTrained: return .disabledEmptyBlockTrained
        case .keep: return .keep
        }
    }

    /// The example before truncation. A chat template that refuses the conversation (Gemma's
    /// "System role not supported", Mistral's alternation rule) throws, naming the row's line.
    public func render(_ row: DatasetRow, file: String = "data") throws -> TokenizedExample {
        switch row.content {
        case .chat(var messages):
            if let system = data.systemPrompt, messages.first?.role != .system {
                messages.insert(ChatMessage(.system, system), at: 0)
            }
            let r: RenderedConversation
            do {
                r = try template.renderTokens(messages, tokenizer: tokenizer, chainOfThought: chainOfThought,
                                              assistantTurns: data.trainOn == .lastAssistant ? .last : .all)
            } catch let error as JinjaError {
                throw DataError.invalidRow(file: file, line: row.line, reason: "\(error)")
            }
            let mask = data.trainOn == .all ? [Bool](repeating: true, count: r.ids.count) : r.assistantMask
            return TokenizedExample(ids: r.ids, lossMask: mask, line: row.line)
        case let .preference(prompt, chosen, _, _):
            return try render(DatasetRow(line: row.line, content: .chat(prompt + [ChatMessage(.assistant, chosen)])), file: file)
        case let .completion(prompt, completion):
            let p = tokenizer.encode(prompt)
            var c = tokenizer.encode(completion, addBOS: false)
            if let eos = tokenizer.eosID { c.append(eos) }
            let mask = [Bool](repeating: data.trainOn == .all, count: p.count) + [Bool](repeating: true, count: c.count)
            return TokenizedExample(ids: p + c, lossMask: mask, line: row.line)
        }
    }

    /// What happened to the rows of one file.
    public struct Report: Equatable, Sendable {
        public var kept = 0
        public var truncated = 0
        public var droppedTooLong = 0
        public var droppedNoTarget = 0
        public var targetTokens = 0
        public var tokens = 0

        /// Adds the counts of another file's rows.
        mutating func add(_ other: Report) {
            kept += other.kept; truncated += other.truncated; droppedTooLong += other.droppedTooLong
            droppedNoTarget += other.droppedNoTarget; targetTokens += other.targetTokens; tokens += other.tokens
        }
    }

    /// Renders every row, applying max_seq_len and the truncation policy; rows left without
    /// any target token are dropped (they would contribute 0/0 to the loss).
    ///
    /// With `pairs`, each row (which must be a `.preference` row) becomes one pair example;
    /// max_seq_len and truncation apply to each of its two sequences, and the pair is dropped
    /// when either sequence would be dropped.
    public func renderAll(_ rows: [DatasetRow], pairs: Bool = false, file: String = "data") throws -> (examples: [TokenizedExample], report: Report) {
        var report = Report()
        var examples: [TokenizedExample] = []
        for row in rows {
            var sequences: [TokenizedExample]
            var labelSmoothing: Double?
            if pairs, case let .preference(prompt, chosen, rejected, smoothing) = row.content {
                labelSmoothing = smoothing
                sequences = try [chosen, rejected].map {
                    try render(DatasetRow(line: row.line, content: .chat(prompt + [ChatMessage(.assistant, $0)])), file: file)
                }
            } else {
                sequences = [try render(row, file: file)]
            }
            var dropped = false, truncated = false
            for i in sequences.indices where sequences[i].ids.count > data.maxSeqLen {
                if data.truncation == .drop { dropped = true; break }
                sequences[i].ids = Array(sequences[i].ids.prefix(data.maxSeqLen))
                sequences[i].lossMask = Array(sequences[i].lossMask.prefix(data.maxSeqLen))
                truncated = true
            }
            if dropped { report.droppedTooLong += 1; continue }
            if truncated { report.truncated += 1 }
            guard sequences.allSatisfy({ $0.targetCount > 0 }) else { report.droppedNoTarget += 1; continue }
            var e = sequences[0]
            if sequences.count == 2 {
                e = TokenizedExample(chosen: sequences[0], rejected: sequences[1])
                e.labelSmoothing = labelSmoothing
            }
            report.kept += 1
            report.tokens += e.ids.count
            report.targetTokens += e.targetCount
            examples.append(e)
        }
        return (examples, report)
    }
}
