import Autodiff
import Tokenizers

/// A rendered training example: token ids and which of them the loss is computed on.
public struct TokenizedExample: Equatable, Sendable {
    public var ids: [Int32]
    /// lossMask[i]: token i is a prediction target (the model is trained to produce it).
    public var lossMask: [Bool]
    /// Source line, for messages.
    public var line: Int

    public init(ids: [Int32], lossMask: [Bool], line: Int) {
        self.ids = ids; self.lossMask = lossMask; self.line = line
    }

    /// Targets aligned to input positions: position i predicts ids[i + 1] when that token
    /// carries loss, else `Tape.ignoreIndex`. The last position never has a target.
    public var targets: [Int32] {
        var t = [Int32](repeating: Tape.ignoreIndex, count: ids.count)
        for i in 0..<max(0, ids.count - 1) where lossMask[i + 1] { t[i] = ids[i + 1] }
        return t
    }

    public var targetCount: Int { lossMask.dropFirst().filter { $0 }.count }
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
        case .keep: return .keep
        }
    }

    /// The example before truncation.
    public func render(_ row: DatasetRow) -> TokenizedExample {
        switch row.content {
        case .chat(var messages):
            if let system = data.systemPrompt, messages.first?.role != .system {
                messages.insert(ChatMessage(.system, system), at: 0)
            }
            let r = template.renderTokens(messages, tokenizer: tokenizer, chainOfThought: chainOfThought)
            let mask = data.trainOn == .all ? [Bool](repeating: true, count: r.ids.count) : r.assistantMask
            return TokenizedExample(ids: r.ids, lossMask: mask, line: row.line)
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
    }

    /// Renders every row, applying max_seq_len and the truncation policy; rows left without
    /// any target token are dropped (they would contribute 0/0 to the loss).
    public func renderAll(_ rows: [DatasetRow]) -> (examples: [TokenizedExample], report: Report) {
        var report = Report()
        var examples: [TokenizedExample] = []
        for row in rows {
            var e = render(row)
            if e.ids.count > data.maxSeqLen {
                if data.truncation == .drop { report.droppedTooLong += 1; continue }
                e.ids = Array(e.ids.prefix(data.maxSeqLen))
                e.lossMask = Array(e.lossMask.prefix(data.maxSeqLen))
                report.truncated += 1
            }
            guard e.targetCount > 0 else { report.droppedNoTarget += 1; continue }
            report.kept += 1
            report.tokens += e.ids.count
            report.targetTokens += e.targetCount
            examples.append(e)
        }
        return (examples, report)
    }
}
