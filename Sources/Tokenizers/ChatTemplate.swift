import Foundation

/// Who wrote a chat message.
public enum ChatRole: String, Sendable, Equatable {
    case system, user, assistant
}

/// One turn of a conversation. `reasoning` is the assistant's chain of thought, rendered in a
/// `<think>` block when the `ChainOfThought` mode keeps it.
public struct ChatMessage: Sendable, Equatable {
    public var role: ChatRole
    public var content: String
    public var reasoning: String?

    /// Usage: `ChatMessage(.assistant, "4", reasoning: "2 + 2 = 4")`
    public init(_ role: ChatRole, _ content: String, reasoning: String? = nil) {
        self.role = role
        self.content = content
        self.reasoning = reasoning
    }
}

/// How reasoning appears in a rendered conversation (Qwen3's `<think>` convention, applied to
/// every ChatML family).
public enum ChainOfThought: Sendable, Equatable {
    /// No think markup anywhere; `reasoning` is dropped (SmolLM2's and Qwen2.5's native format).
    case none
    /// Every assistant turn is "<think>\n\n</think>\n\n" + content, and the generation prompt
    /// ends with that empty block (Qwen3 `enable_thinking=False`). The empty block belongs to the
    /// prompt, as it does at generation time: the assistant mask covers only the content, so
    /// training never teaches the model to close its think block at once.
    case disabled
    /// As `disabled`, but the empty block is masked as produced by the assistant, so training
    /// puts loss on it (ThoughtCrime's rendering before issue 28; the paper's does not).
    case disabledEmptyBlockTrained
    /// Assistant turns with reasoning are "<think>\n" + reasoning + "\n</think>\n\n" + content;
    /// the generation prompt opens "<think>\n".
    case keep
    /// As `keep`, and the generation prompt opens "<think>\n" + `prefill` (e.g. "Okay").
    case enabled(prefill: String)
}

extension ChatMessage {
    /// A content that already carries its think block is rendered as written, in every mode.
    var carriesThinkBlock: Bool { content.contains("<think>") && content.contains("</think>") }
}

/// Token ids of a rendered conversation with the tokens the assistant produced marked.
public struct RenderedConversation: Sendable, Equatable {
    public var ids: [Int32]
    /// True for tokens the assistant produced: its content, its think block and the closing
    /// `<|im_end|>`; false for role headers, the newline after `<|im_end|>`, other roles'
    /// turns, the generation prompt and (`.disabled`) the empty think block, which stands
    /// where a generation prompt with thinking disabled ends.
    public var assistantMask: [Bool]
}

/// ChatML chat templates (`<|im_start|>{role}\n{content}<|im_end|>\n`) as SmolLM2, Qwen2.5 and
/// Qwen3 define them; they differ only in the system message inserted when the conversation
/// does not start with one.
///
/// Usage:
/// ```
/// let template = ChatTemplate.smolLM2
/// let prompt = template.render([ChatMessage(.user, "Hi")], addGenerationPrompt: true)
/// let rendered = template.renderTokens(messages, tokenizer: tokenizer, chainOfThought: .keep)
/// ```
public struct ChatTemplate: Sendable, Equatable {
    /// Inserted as the first message when the conversation does not start with a system message.
    public var defaultSystemMessage: String?
    /// A model's own Jinja template, for templates outside the ChatML family; nil for the
    /// built-in ChatML rendering.
    public var jinja: JinjaChatTemplate?

    public init(defaultSystemMessage: String?) {
        self.defaultSystemMessage = defaultSystemMessage
    }

    /// A template rendered by the Jinja interpreter (Llama 3, Gemma, Mistral, Phi, ...).
    public init(jinja: JinjaChatTemplate) {
        self.defaultSystemMessage = nil
        self.jinja = jinja
    }

    /// The built-in ChatML template that `source` is, else the interpreted template.
    ///
    /// Usage: `let template = try ChatTemplate(jinja: source, bosToken: "<s>", eosToken: "</s>")`
    public init(jinja source: String, bosToken: String?, eosToken: String?) throws {
        if let known = Self.recognise(jinja: source) { self = known; return }
        self.init(jinja: try JinjaChatTemplate(source: source, bosToken: bosToken, eosToken: eosToken))
    }

    /// The token that ends an assistant turn: `<|im_end|>` for ChatML, or the first control
    /// token a Jinja template writes after an assistant's content (`<|eot_id|>`,
    /// `<end_of_turn>`, `</s>`); nil when the vocabulary has none.
    public func endOfTurnTokenID(tokenizer: BPETokenizer) -> Int32? {
        guard let jinja else { return tokenizer.tokenID(for: Self.imEnd) }
        return jinja.endOfTurnMarker(tokenizer: tokenizer).flatMap { tokenizer.tokenID(for: $0) }
    }

    /// Where generation stops: the end-of-turn token and the tokenizer's EOS.
    public func stopTokenIDs(tokenizer: BPETokenizer) -> Set<Int32> {
        var ids = Set<Int32>()
        if let eos = tokenizer.eosID { ids.insert(eos) }
        if let end = endOfTurnTokenID(tokenizer: tokenizer) { ids.insert(end) }
        return ids
    }

    /// SmolLM2-Instruct: inserts "You are a helpful AI assistant named SmolLM, trained by Hugging Face".
    public static let smolLM2 = ChatTemplate(
        defaultSystemMessage: "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    /// Qwen2 / Qwen2.5-Instruct: inserts "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    public static let qwen2 = ChatTemplate(
        defaultSystemMessage: "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
    /// Qwen3: no default system message.
    public static let qwen3 = ChatTemplate(defaultSystemMessage: nil)

    /// Picks the template from a model's Jinja chat template (GGUF `tokenizer.chat_template`);
    /// nil when it is not one of the supported ChatML variants.
    public static func recognise(jinja source: String) -> ChatTemplate? {
        guard source.contains("<|im_start|>") else { return nil }
        if source.contains("named SmolLM") { return .smolLM2 }
        if source.contains("You are Qwen, created by Alibaba Cloud") { return .qwen2 }
        if source.contains("<think>") { return .qwen3 }
        return nil
    }

    public static let imStart = "<|im_start|>"
    public static let imEnd = "<|im_end|>"

    /// The conversation as text.
    ///
    /// Usage: `ChatTemplate.qwen3.render(messages, chainOfThought: .disabled, addGenerationPrompt: true)`
    public func render(
        _ messages: [ChatMessage], chainOfThought: ChainOfThought = .none, addGenerationPrompt: Bool = false
    ) throws -> String {
        if let jinja { return try jinja.render(messages, chainOfThought: chainOfThought, addGenerationPrompt: addGenerationPrompt) }
        return segments(messages, chainOfThought: chainOfThought, addGenerationPrompt: addGenerationPrompt)
            .map(\.text).joined()
    }

    /// The conversation as token ids with an assistant mask. Each segment (role header, body,
    /// `<|im_end|>`, newline) is tokenised on its own so that the mask boundaries are exact; this
    /// is also how the model sees them at generation time (the prompt ends after the header).
    /// Message bodies are tokenised as text: control tokens spelled inside them (`<|im_end|>`)
    /// stay ordinary characters, so no message can end its turn or open another role's; only
    /// the template's own markers are control tokens (docs/server.md, "Prompt injection").
    /// For ordinary conversations the ids equal `tokenizer.encode(render(...))`; they can differ
    /// when an assistant body starts with whitespace, which the full-text pre-tokenizer would glue
    /// onto the header's newline, and with `.disabled`, whose empty block ends in one "\n\n"
    /// token as the generation prompt does (the whole text would split it before the answer).
    /// `assistantTurns: .last` marks only the last assistant turn (data.train_on: last_assistant).
    /// A Jinja template that refuses the conversation (`raise_exception`) throws `JinjaError`.
    public func renderTokens(
        _ messages: [ChatMessage], tokenizer: BPETokenizer, chainOfThought: ChainOfThought = .none,
        addGenerationPrompt: Bool = false, assistantTurns: JinjaChatTemplate.AssistantTurns = .all
    ) throws -> RenderedConversation {
        if let jinja {
            return try jinja.renderTokens(messages, tokenizer: tokenizer, chainOfThought: chainOfThought,
                                          addGenerationPrompt: addGenerationPrompt, assistantTurns: assistantTurns)
        }
        var rendered = chatMLTokens(messages, tokenizer: tokenizer, chainOfThought: chainOfThought, addGenerationPrompt: addGenerationPrompt)
        if assistantTurns == .last, let last = messages.lastIndex(where: { $0.role == .assistant }) {
            // Segments are tokenised one by one, so the turns before the last assistant one
            // are exactly the first ids of the whole: their mask is cleared.
            let context = chatMLTokens(Array(messages[..<last]), tokenizer: tokenizer, chainOfThought: chainOfThought, addGenerationPrompt: false).ids.count
            for i in 0..<min(context, rendered.assistantMask.count) { rendered.assistantMask[i] = false }
        }
        return rendered
    }

    private func chatMLTokens(
        _ messages: [ChatMessage], tokenizer: BPETokenizer, chainOfThought: ChainOfThought, addGenerationPrompt: Bool
    ) -> RenderedConversation {
        var rendered = RenderedConversation(ids: [], assistantMask: [])
        for segment in segments(messages, chainOfThought: chainOfThought, addGenerationPrompt: addGenerationPrompt) {
            let ids = tokenizer.encode(segment.text, parseSpecialTokens: !segment.isMessageText, addBOS: false)
            rendered.ids += ids
            rendered.assistantMask += Array(repeating: segment.producedByAssistant, count: ids.count)
        }
        return rendered
    }

    struct Segment {
        let text: String
        let producedByAssistant: Bool
        /// A message's own text (not the template's markup): never parsed for control tokens.
        var isMessageText = false
    }

    func segments(_ messages: [ChatMessage], chainOfThought: ChainOfThought, addGenerationPrompt: Bool) -> [Segment] {
        var turns = messages
        // SmolLM2's template inserts inside its message loop, so an empty conversation gets no
        // system message; Qwen2.5's checks messages[0] before the loop and always inserts.
        let startsWithoutSystem = turns.first.map { $0.role != .system } ?? (self != .smolLM2)
        if startsWithoutSystem, let defaultSystemMessage {
            turns.insert(ChatMessage(.system, defaultSystemMessage), at: 0)
        }
        var result: [Segment] = []
        for message in turns {
            result.append(Segment(text: Self.imStart + message.role.rawValue + "\n", producedByAssistant: false))
            let isAssistant = message.role == .assistant
            if isAssistant, chainOfThought == .disabled, !message.carriesThinkBlock {
                // The empty block is tokenised on its own, exactly as a generation prompt ends.
                result.append(Segment(text: Self.emptyThinkBlock, producedByAssistant: false))
                if !message.content.isEmpty {
                    result.append(Segment(text: message.content, producedByAssistant: true, isMessageText: true))
                }
            } else {
                let body = isAssistant ? assistantBody(message, chainOfThought: chainOfThought) : message.content
                if !body.isEmpty { result.append(Segment(text: body, producedByAssistant: isAssistant, isMessageText: true)) }
            }
            result.append(Segment(text: Self.imEnd, producedByAssistant: isAssistant))
            result.append(Segment(text: "\n", producedByAssistant: false))
        }
        if addGenerationPrompt {
            var prompt = Self.imStart + "assistant\n"
            switch chainOfThought {
            case .none: break
            case .disabled, .disabledEmptyBlockTrained: prompt += Self.emptyThinkBlock
            case .keep: prompt += "<think>\n"
            case let .enabled(prefill): prompt += "<think>\n" + prefill
            }
            result.append(Segment(text: prompt, producedByAssistant: false))
        }
        return result
    }

    static let emptyThinkBlock = "<think>\n\n</think>\n\n"

    private func assistantBody(_ message: ChatMessage, chainOfThought: ChainOfThought) -> String {
        if message.carriesThinkBlock { return message.content }
        switch chainOfThought {
        case .none:
            return message.content
        case .disabled, .disabledEmptyBlockTrained:
            return Self.emptyThinkBlock + message.content
        case .keep, .enabled:
            guard let reasoning = message.reasoning else { return message.content }
            return "<think>\n" + reasoning + "\n</think>\n\n" + message.content
        }
    }
}
