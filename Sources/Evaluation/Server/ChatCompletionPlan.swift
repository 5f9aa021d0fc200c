import Foundation
import Models
import Tokenizers

/// A request rejected before generation: answered with HTTP 400 and an OpenAI-style error
/// naming the field.
public struct ChatCompletionRequestError: Error, Equatable, CustomStringConvertible {
    /// The request field at fault, e.g. "temperature" or "messages[2].role"; nil for the body as a whole.
    public var param: String?
    public var message: String

    public init(param: String?, _ message: String) {
        self.param = param
        self.message = message
    }

    public var description: String { message }
}

/// Limits and defaults of a served model.
public struct ChatCompletionLimits: Sendable, Equatable {
    /// New tokens per choice when the request gives no max_tokens (also capped by the context).
    public var defaultMaxTokens: Int
    /// Largest `n` (choices generated as one batch).
    public var maximumChoices: Int
    /// Largest `top_logprobs` (OpenAI's limit is 20).
    public var maximumTopLogprobs: Int
    /// Largest request body in bytes.
    public var maximumBodyBytes: Int

    public init(defaultMaxTokens: Int = 512, maximumChoices: Int = 16, maximumTopLogprobs: Int = 20, maximumBodyBytes: Int = 4 << 20) {
        self.defaultMaxTokens = defaultMaxTokens
        self.maximumChoices = maximumChoices
        self.maximumTopLogprobs = maximumTopLogprobs
        self.maximumBodyBytes = maximumBodyBytes
    }
}

/// A validated request, ready to generate: the rendered prompt, sampling and stop settings.
struct ChatCompletionPlan {
    /// Highest `temperature` a request may ask for.
    public static let maximumTemperature = 100.0

    var promptIDs: [Int32]
    var choices: Int
    /// The served model or adapter the request named (nil: the default).
    var model: String?
    /// Text completions of several prompts: every prompt, `choices` times each, in order; nil
    /// for one prompt (`promptIDs`, `choices` times).
    var promptBatch: [[Int32]]?

    /// The prompt of every sequence to generate.
    var sequences: [[Int32]] { promptBatch ?? Array(repeating: promptIDs, count: choices) }
    /// Prompt tokens as usage reports them: each distinct prompt once.
    var promptTokenCount: Int {
        guard let promptBatch else { return promptIDs.count }
        return stride(from: 0, to: promptBatch.count, by: max(choices, 1)).reduce(0) { $0 + promptBatch[$1].count }
    }
    var sampling: SamplingParameters
    var stop: StopCriteria
    /// nil: no logprobs; otherwise how many alternatives per token.
    var topLogprobs: Int?
    var stream: Bool
    var includeUsageInStream: Bool
    var splitter: ReasoningSplitter

    enum Thinking: String, CaseIterable { case on, off, native }

    /// OpenAI request fields this server does not implement, each refused (HTTP 400 naming it)
    /// rather than ignored, unless it holds the value that means "nothing asked": what the
    /// value may be, and why the field is refused.
    static let unsupportedFields: [(name: String, allowed: (Any) -> Bool, reason: String)] = [
        ("tools", { ($0 as? [Any])?.isEmpty == true }, "tool calling is not implemented"),
        ("tool_choice", { ($0 as? String) == "none" }, "tool calling is not implemented"),
        ("functions", { ($0 as? [Any])?.isEmpty == true }, "function calling is not implemented"),
        ("function_call", { ($0 as? String) == "none" }, "function calling is not implemented"),
        ("response_format", { (($0 as? [String: Any])?["type"] as? String) == "text" },
         "structured output (json_object, json_schema) is not implemented; only {\"type\": \"text\"}"),
        ("logit_bias", { ($0 as? [String: Any])?.isEmpty == true }, "logit_bias is not implemented"),
        ("audio", { _ in false }, "audio output is not supported"),
        ("modalities", { ($0 as? [String]) == ["text"] }, "only text output is supported"),
        ("prediction", { _ in false }, "predicted outputs are not implemented"),
        ("web_search_options", { _ in false }, "web search is not supported"),
        ("reasoning_effort", { _ in false }, "reasoning effort is not supported; use thinking (on, off, native) and max_tokens"),
    ]

    /// The first unsupported field `object` sets to something other than its "nothing asked" value.
    static func refuseUnsupportedFields(_ object: [String: Any]) throws {
        for field in unsupportedFields {
            guard let value = object[field.name], !(value is NSNull), !field.allowed(value) else { continue }
            throw ChatCompletionRequestError(param: field.name, "\(field.name): \(field.reason)")
        }
    }

    /// Validates `request` against the model's limits and renders its prompt.
    static func make(
        _ request: ChatCompletionRequest, tokenizer: BPETokenizer, template: ChatTemplate, contextLength: Int,
        limits: ChatCompletionLimits
    ) throws -> ChatCompletionPlan {
        let messages = try chatMessages(request.messages)

        let thinking: Thinking
        if let name = request.thinking {
            guard let parsed = Thinking(rawValue: name) else {
                throw ChatCompletionRequestError(param: "thinking", "thinking must be one of on, off, native; got '\(name)'")
            }
            thinking = parsed
        } else if let enabled = request.chatTemplateKwargs?.enableThinking {
            thinking = enabled ? .on : .off
        } else {
            thinking = .native
        }
        if request.thinkingPrefill != nil, thinking != .on {
            throw ChatCompletionRequestError(param: "thinking_prefill", "thinking_prefill needs thinking 'on'")
        }
        let prefill = request.thinkingPrefill ?? ""
        let chainOfThought: ChainOfThought
        let start: ReasoningSplitter.Start
        switch thinking {
        case .on: chainOfThought = .enabled(prefill: prefill); start = .insideThinkBlock(prefill: prefill)
        case .off: chainOfThought = .disabled; start = .outsideThinkBlock
        case .native: chainOfThought = .none; start = .detect
        }

        let choices = request.n ?? 1
        guard (1...limits.maximumChoices).contains(choices) else {
            throw ChatCompletionRequestError(param: "n", "n must be in 1...\(limits.maximumChoices), got \(choices)")
        }
        let temperature = request.temperature ?? 1
        // Sampling divides Float32 logits by it: anything past 100 is greedy in all but name,
        // and values past Float's range would become infinity.
        guard temperature.isFinite, (0...ChatCompletionPlan.maximumTemperature).contains(temperature) else {
            throw ChatCompletionRequestError(
                param: "temperature", "temperature must be in 0...\(Int(ChatCompletionPlan.maximumTemperature)), got \(temperature)")
        }
        let topP = request.topP ?? 1
        guard topP > 0, topP <= 1 else { throw ChatCompletionRequestError(param: "top_p", "top_p must be in (0, 1], got \(topP)") }
        let topK = request.topK ?? 0
        guard topK >= -1 else { throw ChatCompletionRequestError(param: "top_k", "top_k must be >= 0 (0 or -1 = off), got \(topK)") }
        let minP = request.minP ?? 0
        guard minP >= 0, minP < 1 else { throw ChatCompletionRequestError(param: "min_p", "min_p must be in [0, 1), got \(minP)") }
        for (field, value) in [("presence_penalty", request.presencePenalty), ("frequency_penalty", request.frequencyPenalty)] {
            if let value, !(value.isFinite && (-2...2).contains(value)) {
                throw ChatCompletionRequestError(param: field, "\(field) must be in -2...2, got \(value)")
            }
        }
        let repetitionPenalty = request.repetitionPenalty ?? 1
        guard repetitionPenalty.isFinite, repetitionPenalty > 0, repetitionPenalty <= 10 else {
            throw ChatCompletionRequestError(param: "repetition_penalty", "repetition_penalty must be in (0, 10] (1 = off), got \(repetitionPenalty)")
        }
        let sampling = SamplingParameters(
            temperature: Float(temperature), topK: max(topK, 0), topP: Float(topP), minP: Float(minP),
            seed: request.seed.map { UInt64(bitPattern: $0) } ?? UInt64.random(in: 0...UInt64.max),
            repetitionPenalty: Float(repetitionPenalty), presencePenalty: Float(request.presencePenalty ?? 0),
            frequencyPenalty: Float(request.frequencyPenalty ?? 0))

        let stopStrings = request.stop?.values ?? []
        for (i, s) in stopStrings.enumerated() where s.isEmpty {
            throw ChatCompletionRequestError(param: "stop", "stop[\(i)] is empty")
        }

        var topLogprobs: Int?
        if request.logprobs == true {
            let count = request.topLogprobs ?? 0
            guard (0...limits.maximumTopLogprobs).contains(count) else {
                throw ChatCompletionRequestError(
                    param: "top_logprobs", "top_logprobs must be in 0...\(limits.maximumTopLogprobs), got \(count)")
            }
            topLogprobs = count
        } else if request.topLogprobs != nil {
            throw ChatCompletionRequestError(param: "top_logprobs", "top_logprobs needs logprobs: true")
        }

        let promptIDs: [Int32]
        do {
            promptIDs = try template.renderTokens(messages, tokenizer: tokenizer, chainOfThought: chainOfThought, addGenerationPrompt: true).ids
        } catch let error as JinjaError {
            throw ChatCompletionRequestError(param: "messages", "\(error)")
        }
        let room = contextLength - promptIDs.count
        guard room >= 1 else {
            throw ChatCompletionRequestError(
                param: "messages", "the prompt has \(promptIDs.count) tokens; the model's context is \(contextLength)")
        }
        let maxTokensField = request.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens"
        let maxTokens: Int
        if let requested = request.maxCompletionTokens ?? request.maxTokens {
            guard requested >= 1 else { throw ChatCompletionRequestError(param: maxTokensField, "\(maxTokensField) must be >= 1, got \(requested)") }
            guard requested <= room else {
                throw ChatCompletionRequestError(
                    param: maxTokensField,
                    "\(maxTokensField) \(requested) plus the prompt's \(promptIDs.count) tokens exceeds the context of \(contextLength)")
            }
            maxTokens = requested
        } else {
            maxTokens = min(limits.defaultMaxTokens, room)
        }

        let stopIDs = template.stopTokenIDs(tokenizer: tokenizer)
        return ChatCompletionPlan(
            promptIDs: promptIDs, choices: choices, model: request.model, promptBatch: nil, sampling: sampling,
            stop: StopCriteria(tokenIDs: stopIDs, strings: stopStrings, maxNewTokens: maxTokens),
            topLogprobs: topLogprobs, stream: request.stream ?? false,
            includeUsageInStream: request.streamOptions?.includeUsage ?? false,
            splitter: ReasoningSplitter(start: start, stopStrings: stopStrings))
    }

    private static func chatMessages(_ messages: [ChatCompletionMessage]) throws -> [ChatMessage] {
        guard !messages.isEmpty else { throw ChatCompletionRequestError(param: "messages", "messages must not be empty") }
        return try messages.enumerated().map { i, message in
            let role: ChatRole
            switch message.role {
            case "system", "developer": role = .system
            case "user": role = .user
            case "assistant": role = .assistant
            default:
                throw ChatCompletionRequestError(
                    param: "messages[\(i)].role", "messages[\(i)].role '\(message.role)' is not supported; use system, developer, user or assistant")
            }
            guard let content = message.content ?? (role == .assistant ? "" : nil) else {
                throw ChatCompletionRequestError(param: "messages[\(i)].content", "messages[\(i)].content is missing")
            }
            return ChatMessage(role, content, reasoning: message.reasoningContent)
        }
    }
}

extension ChatCompletionPlan {
    /// Validates a text completion request: the same checks as a chat request (sampling, n,
    /// stop, penalties) on its fields, the prompts encoded as raw text without a template.
    static func completion(
        _ request: CompletionRequest, tokenizer: BPETokenizer, contextLength: Int, limits: ChatCompletionLimits
    ) throws -> ChatCompletionPlan {
        if request.echo == true { throw ChatCompletionRequestError(param: "echo", "echo: returning the prompt with the completion is not implemented") }
        if let suffix = request.suffix, !suffix.isEmpty { throw ChatCompletionRequestError(param: "suffix", "suffix: insertion is not implemented") }
        if let bestOf = request.bestOf, bestOf != 1 { throw ChatCompletionRequestError(param: "best_of", "best_of: only 1 is supported") }
        let prompts = request.prompt.values
        guard !prompts.isEmpty else { throw ChatCompletionRequestError(param: "prompt", "prompt must not be empty") }
        if let count = request.logprobs, !(0...5).contains(count) {
            throw ChatCompletionRequestError(param: "logprobs", "logprobs must be in 0...5 (alternatives per token), got \(count)")
        }
        // The chat checks, on a stand-in message; the prompt itself is replaced below.
        var plan = try make(
            ChatCompletionRequest(
                model: request.model, messages: [ChatCompletionMessage(role: "user", content: "x")], maxTokens: nil,
                temperature: request.temperature, topP: request.topP, topK: request.topK, minP: request.minP, seed: request.seed,
                stop: request.stop, n: request.n, logprobs: request.logprobs != nil, topLogprobs: request.logprobs,
                stream: request.stream, streamOptions: request.streamOptions, thinking: "native",
                presencePenalty: request.presencePenalty, frequencyPenalty: request.frequencyPenalty, repetitionPenalty: request.repetitionPenalty),
            tokenizer: tokenizer, template: .smolLM2, contextLength: contextLength, limits: limits)
        let encoded = prompts.map { tokenizer.encode($0, parseSpecialTokens: true) }
        for (i, ids) in encoded.enumerated() where ids.isEmpty {
            throw ChatCompletionRequestError(param: prompts.count == 1 ? "prompt" : "prompt[\(i)]", "the prompt encodes to no tokens")
        }
        let longest = encoded.map(\.count).max() ?? 0
        let room = contextLength - longest
        guard room >= 1 else {
            throw ChatCompletionRequestError(param: "prompt", "the prompt has \(longest) tokens; the model's context is \(contextLength)")
        }
        // OpenAI's default for this endpoint is 16 new tokens.
        let maxTokens = request.maxTokens ?? min(16, room)
        guard maxTokens >= 1 else { throw ChatCompletionRequestError(param: "max_tokens", "max_tokens must be >= 1, got \(maxTokens)") }
        guard maxTokens <= room else {
            throw ChatCompletionRequestError(param: "max_tokens", "max_tokens \(maxTokens) plus the prompt's \(longest) tokens exceeds the context of \(contextLength)")
        }
        guard encoded.count * plan.choices <= limits.maximumChoices else {
            throw ChatCompletionRequestError(param: "n", "\(encoded.count) prompts x n \(plan.choices) exceeds the \(limits.maximumChoices) sequences per request")
        }
        plan.promptIDs = encoded[0]
        plan.promptBatch = encoded.count == 1 ? nil : encoded.flatMap { Array(repeating: $0, count: plan.choices) }
        plan.stop.maxNewTokens = maxTokens
        // Without a template nothing marks the end of a turn: only EOS ends a text completion.
        plan.stop.tokenIDs = tokenizer.eosID.map { [$0] } ?? []
        plan.splitter = ReasoningSplitter(start: .outsideThinkBlock, stopStrings: plan.stop.strings)
        return plan
    }
}
