/// A model's own chat template (GGUF `tokenizer.chat_template`, or `chat_template` in
/// tokenizer_config.json / chat_template.jinja), rendered by ThoughtCrime's Jinja interpreter
/// as transformers' `apply_chat_template` renders it: Llama 3, Gemma, Mistral, Phi and any
/// other template within the subset (docs/chat-templates.md).
///
/// The chain-of-thought modes follow the template when it has a think block (Qwen3-style
/// `enable_thinking` and `reasoning_content`), and are added around the content when it has
/// none, as the built-in ChatML templates add them. Which tokens the assistant produced is found
/// by rendering: assistant turn i spans from the end of the conversation before it, rendered
/// with the generation prompt, to the end of the template's own end-of-turn token that follows
/// (`<|eot_id|>`, `<end_of_turn>`, `</s>`: the control token it writes after a reply).
///
/// Usage:
/// ```
/// let template = try JinjaChatTemplate(source: jinja, bosToken: "<|begin_of_text|>", eosToken: "<|eot_id|>")
/// let text = try template.render(messages, chainOfThought: .none, addGenerationPrompt: true)
/// ```
public struct JinjaChatTemplate: Sendable, Equatable {
    public let source: String
    public let bosToken: String?
    public let eosToken: String?
    private let template: ParsedTemplate
    /// A short exchange rendered once, where the end-of-turn token is looked up (nil when the
    /// template refuses it).
    private var endOfTurnSample: JinjaText?

    /// The parsed tree holds no functions (those appear only while rendering), so it can be shared.
    private struct ParsedTemplate: @unchecked Sendable { let template: JinjaTemplate }

    public init(source: String, bosToken: String?, eosToken: String?) throws {
        self.source = source; self.bosToken = bosToken; self.eosToken = eosToken
        template = ParsedTemplate(template: try JinjaTemplate(source: source))
        endOfTurnSample = try? text([ChatMessage(.user, "Hi"), ChatMessage(.assistant, "Hello")], addGenerationPrompt: false)
    }

    public static func == (a: JinjaChatTemplate, b: JinjaChatTemplate) -> Bool {
        a.source == b.source && a.bosToken == b.bosToken && a.eosToken == b.eosToken
    }

    /// True when the template writes `<think>` blocks itself (Qwen3, DeepSeek-R1).
    public var hasThinkBlock: Bool { source.contains("<think>") }

    /// The template's text for `messages` with these variables, as transformers renders it
    /// (`apply_chat_template(..., tokenize=False, **variables)`); strings in `variables` are markup.
    func text(_ messages: [ChatMessage], addGenerationPrompt: Bool, enableThinking: Bool? = nil,
              variables: [String: String] = [:], budget: JinjaStepBudget = JinjaStepBudget()) throws -> JinjaText {
        var globals: [String: JinjaValue] = [
            "messages": .list(messages.map { m in
                var fields: [(String, JinjaValue)] = [("role", .text(m.role.rawValue, isData: true)), ("content", .text(m.content, isData: true))]
                if let r = m.reasoning { fields.append(("reasoning_content", .text(r, isData: true))) }
                return .dict(fields)
            }),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": bosToken.map { .text($0) } ?? .none,
            "eos_token": eosToken.map { .text($0) } ?? .none,
        ]
        if let enableThinking { globals["enable_thinking"] = .bool(enableThinking) }
        for (k, v) in variables { globals[k] = .text(v) }
        return try template.template.render(globals, budget: budget)
    }

    /// The conversation as text, in a chain-of-thought mode.
    public func render(_ messages: [ChatMessage], chainOfThought: ChainOfThought = .none, addGenerationPrompt: Bool = false) throws -> String {
        var rendered = try text(prepared(messages, chainOfThought), addGenerationPrompt: addGenerationPrompt, enableThinking: enableThinking(chainOfThought))
        if addGenerationPrompt { rendered.append(generationSuffix(chainOfThought, rendered: rendered.string)) }
        return rendered.string
    }

    // MARK: Chain of thought

    private func enableThinking(_ mode: ChainOfThought) -> Bool? {
        guard hasThinkBlock else { return nil }
        switch mode {
        case .none: return nil
        case .disabled, .disabledEmptyBlockTrained: return false
        case .keep, .enabled: return true
        }
    }

    /// Messages as the template receives them: reasoning passed as `reasoning_content` to a
    /// template with a think block, or written into the content (Qwen3's convention) otherwise.
    func prepared(_ messages: [ChatMessage], _ mode: ChainOfThought) -> [ChatMessage] {
        messages.map { m in
            guard m.role == .assistant else { return ChatMessage(m.role, m.content) }
            if m.carriesThinkBlock { return ChatMessage(.assistant, m.content) }
            switch mode {
            case .none:
                return ChatMessage(.assistant, m.content)
            case .disabled, .disabledEmptyBlockTrained:
                return hasThinkBlock ? ChatMessage(.assistant, m.content, reasoning: "") : ChatMessage(.assistant, ChatTemplate.emptyThinkBlock + m.content)
            case .keep, .enabled:
                guard let r = m.reasoning else { return ChatMessage(.assistant, m.content) }
                return hasThinkBlock ? ChatMessage(.assistant, m.content, reasoning: r) : ChatMessage(.assistant, "<think>\n" + r + "\n</think>\n\n" + m.content)
            }
        }
    }

    /// What the generation prompt gains beyond the template's own: the think markup a template
    /// without a think block does not write, and a prefill. It is message-like text (never
    /// parsed for control tokens), as the same markup is inside assistant contents.
    private func generationSuffix(_ mode: ChainOfThought, rendered: String) -> JinjaText {
        switch mode {
        case .none: return JinjaText()
        case .disabled, .disabledEmptyBlockTrained: return hasThinkBlock ? JinjaText() : JinjaText(ChatTemplate.emptyThinkBlock, isData: true)
        case .keep: return hasThinkBlock && rendered.hasSuffix("<think>\n") ? JinjaText() : JinjaText("<think>\n", isData: true)
        case let .enabled(prefill):
            let open = rendered.hasSuffix("<think>\n") ? "" : "<think>\n"
            return JinjaText(open + prefill, isData: true)
        }
    }

    /// The prompt before assistant turn `i` ends here: with `.disabled` after the empty block
    /// (it is prompt), otherwise after the template's generation prompt.
    private func promptBefore(_ messages: [ChatMessage], _ mode: ChainOfThought, budget: JinjaStepBudget) throws -> JinjaText {
        var p = try text(messages, addGenerationPrompt: true, enableThinking: enableThinking(mode == .disabled ? .disabled : .none), budget: budget)
        if mode == .disabled { p.append(generationSuffix(.disabled, rendered: p.string)) }
        return p
    }

    // MARK: Tokens

    /// The conversation as token ids with an assistant mask. The text is split at the
    /// template's own control tokens (message text is never parsed for them) and at the edges of
    /// the assistant's turns, and each piece is tokenised as text; `assistantTurns` limits the
    /// mask to the last assistant turn when `.last`.
    public func renderTokens(_ messages: [ChatMessage], tokenizer: BPETokenizer, chainOfThought mode: ChainOfThought = .none,
                             addGenerationPrompt: Bool = false, assistantTurns: AssistantTurns = .all) throws -> RenderedConversation {
        let turns = prepared(messages, mode)
        // One step budget for the whole call: a conversation is rendered once per assistant turn.
        let budget = JinjaStepBudget()
        var whole = try text(turns, addGenerationPrompt: addGenerationPrompt, enableThinking: enableThinking(mode), budget: budget)
        if addGenerationPrompt { whole.append(generationSuffix(mode, rendered: whole.string)) }
        let wholeString = whole.string
        let marker = endOfTurnMarker(tokenizer: tokenizer)
        // Every assistant turn that can be found is cut out (so its tokens are those a generation
        // would produce after its prompt); only the turns asked for are marked.
        var cuts: [Range<Int>] = [], spans: [Range<Int>] = []
        let assistantIndices = turns.indices.filter { turns[$0].role == .assistant }
        // In a generation prompt the earlier turns are cut (and marked) as training cut them when
        // they can be found within their own step budget; else it is cut at control tokens only,
        // as transformers tokenises apply_chat_template's text, and never refused.
        let spanBudget = addGenerationPrompt ? JinjaStepBudget() : budget
        for i in assistantIndices {
            let marked = assistantTurns == .all || i == assistantIndices.last
            do {
                // Through the last turn, without a generation prompt, is the whole text already rendered.
                let through = !addGenerationPrompt && i == turns.count - 1 ? whole : nil
                let span = try assistantSpan(turns, i, mode: mode, whole: wholeString, through: through, marker: marker,
                                             tokenizer: tokenizer, budget: spanBudget)
                cuts.append(span)
                if marked { spans.append(span) }
            } catch where addGenerationPrompt {
                cuts = []; spans = []
                break
            } catch where !marked {
                continue
            }
        }
        return Self.tokens(whole, spans: spans, cuts: cuts, tokenizer: tokenizer)
    }

    /// Assistant turn `i`: from the end of its prompt to the end of its end-of-turn token.
    private func assistantSpan(_ turns: [ChatMessage], _ i: Int, mode: ChainOfThought, whole: String, through rendered: JinjaText?,
                               marker: String?, tokenizer: BPETokenizer, budget: JinjaStepBudget) throws -> Range<Int> {
        let prompt = try promptBefore(Array(turns[..<i]), mode, budget: budget).string
        let through = try rendered ?? text(Array(turns[...i]), addGenerationPrompt: false, enableThinking: enableThinking(mode), budget: budget)
        let throughString = through.string
        // Bytes, not characters: a reply opening with a combining mark still follows its prompt.
        guard throughString.utf8.starts(with: prompt.utf8) else {
            throw JinjaError.render(line: 0, message: "assistant turn \(i + 1) does not follow the generation prompt the template writes before it, so its tokens cannot be told apart")
        }
        let start = prompt.utf8.count
        let end = Self.endOfTurn(through, after: start, marker: marker, tokenizer: tokenizer)
        guard end >= start, whole.utf8.count >= end, whole.utf8.prefix(end).elementsEqual(throughString.utf8.prefix(end)) else {
            throw JinjaError.render(line: 0, message: "the template renders assistant turn \(i + 1) differently once later turns follow it (as Qwen3 drops earlier reasoning); train on the last turn only (data.train_on: last_assistant)")
        }
        return start..<max(start, end)
    }

    /// The spelling of the control token the template writes right after an assistant's
    /// content (`<|eot_id|>`, `<end_of_turn>`, `<|im_end|>`), found in a short exchange rendered
    /// once; nil when it writes none.
    func endOfTurnMarker(tokenizer: BPETokenizer) -> String? {
        guard let sample = endOfTurnSample else { return nil }
        let whole = sample.string
        guard let at = whole.range(of: "Hello", options: .backwards) else { return nil }
        let start = whole.utf8.distance(from: whole.utf8.startIndex, to: at.upperBound)
        guard let token = Self.endOfTurnToken(sample, after: start, marker: nil, tokenizer: tokenizer) else { return nil }
        return String(decoding: Array(whole.utf8)[token], as: UTF8.self)
    }

    /// Which assistant turns the mask marks.
    public enum AssistantTurns: Sendable { case all, last }

    /// The end (UTF-8 offset) of the first end-of-turn token after `start`; the end of the text
    /// when there is none.
    static func endOfTurn(_ text: JinjaText, after start: Int, marker: String?, tokenizer: BPETokenizer) -> Int {
        endOfTurnToken(text, after: start, marker: marker, tokenizer: tokenizer)?.upperBound ?? text.string.utf8.count
    }

    /// Where (UTF-8 range) the first end-of-turn token (`marker`, or any control token when
    /// there is no marker) stands in the template's own markup at or after `start`.
    static func endOfTurnToken(_ text: JinjaText, after start: Int, marker: String?, tokenizer: BPETokenizer) -> Range<Int>? {
        var offset = 0
        for chunk in text.chunks {
            let length = chunk.text.utf8.count
            defer { offset += length }
            guard !chunk.isData, offset + length > start else { continue }
            let bytes = Array(chunk.text.utf8)
            for (range, id) in tokenizer.specialTokenRanges(in: chunk.text) where offset + range.lowerBound >= start && tokenizer.isSpecial(id) {
                if let marker, String(decoding: bytes[range], as: UTF8.self) != marker { continue }
                return (offset + range.lowerBound)..<(offset + range.upperBound)
            }
        }
        return nil
    }

    /// Token ids of `text`, cut at control tokens inside markup and at the span edges.
    static func tokens(_ text: JinjaText, spans: [Range<Int>], cuts extraCuts: [Range<Int>] = [], tokenizer: BPETokenizer) -> RenderedConversation {
        var specials: [(range: Range<Int>, id: Int32)] = []
        var offset = 0
        for chunk in text.chunks {
            if !chunk.isData {
                specials += tokenizer.specialTokenRanges(in: chunk.text).map { ((offset + $0.range.lowerBound)..<(offset + $0.range.upperBound), $0.id) }
            }
            offset += chunk.text.utf8.count
        }
        let bytes = Array(text.string.utf8)
        var cuts = Set([0, bytes.count])
        for s in specials { cuts.insert(s.range.lowerBound); cuts.insert(s.range.upperBound) }
        for s in spans + extraCuts { cuts.insert(s.lowerBound); cuts.insert(s.upperBound) }
        let ordered = cuts.sorted()
        let specialAt = Dictionary(specials.map { ($0.range.lowerBound, $0) }, uniquingKeysWith: { a, _ in a })
        var rendered = RenderedConversation(ids: [], assistantMask: [])
        for (a, b) in zip(ordered, ordered.dropFirst()) where a < b {
            let produced = spans.contains { $0.contains(a) }
            let ids: [Int32]
            if let s = specialAt[a], s.range.upperBound == b {
                ids = [s.id]
            } else {
                ids = tokenizer.encode(String(decoding: bytes[a..<b], as: UTF8.self), parseSpecialTokens: false, addBOS: false)
            }
            rendered.ids += ids
            rendered.assistantMask += Array(repeating: produced, count: ids.count)
        }
        return rendered
    }
}
