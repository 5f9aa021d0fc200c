import Foundation

// OpenAI chat-completions wire types, shared by `ChatCompletionServer` (which decodes requests
// and encodes responses) and `OpenAICompatibleClient` (the reverse). Field names follow the
// OpenAI API; ThoughtCrime's extensions (top_k, min_p, thinking, thinking_prefill) and
// Qwen/vLLM's (chat_template_kwargs, reasoning_content) are marked. Optional fields are
// omitted when nil, so an encoded request is canonical enough to hash for a cache key.

/// A POST /v1/chat/completions body.
///
/// Usage: `ChatCompletionRequest(model: "judge", messages: [.init(role: "user", content: "Hi")], maxTokens: 1)`
public struct ChatCompletionRequest: Codable, Equatable, Sendable {
    public var model: String?
    public var messages: [ChatCompletionMessage]
    /// Deprecated by OpenAI in favour of `maxCompletionTokens`; both are accepted.
    public var maxTokens: Int?
    public var maxCompletionTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    /// Extension (vLLM, llama.cpp): keep the k most likely tokens; 0 or -1 = off.
    public var topK: Int?
    /// Extension (vLLM, llama.cpp): drop tokens below min_p times the best token's probability.
    public var minP: Double?
    /// Any 64-bit integer, as OpenAI accepts; negative seeds are used by their bit pattern.
    public var seed: Int64?
    public var stop: StopSequences?
    public var n: Int?
    public var logprobs: Bool?
    public var topLogprobs: Int?
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    /// Extension: "on" opens a think block, "off" inserts an empty one, "native" uses neither.
    public var thinking: String?
    /// Extension: text the think block starts with when thinking is on (e.g. "Okay").
    public var thinkingPrefill: String?
    /// Qwen/vLLM's switch: `{"enable_thinking": false}`.
    public var chatTemplateKwargs: ChatTemplateArguments?
    /// OpenAI: -2...2, subtracted from the logit of every token generated so far.
    public var presencePenalty: Double?
    /// OpenAI: -2...2, times each generated token's count, subtracted from its logit.
    public var frequencyPenalty: Double?
    /// Extension (vLLM, llama.cpp): transformers' repetition penalty over the last 64 tokens; 1 = off.
    public var repetitionPenalty: Double?

    public init(
        model: String? = nil, messages: [ChatCompletionMessage], maxTokens: Int? = nil, maxCompletionTokens: Int? = nil,
        temperature: Double? = nil, topP: Double? = nil, topK: Int? = nil, minP: Double? = nil, seed: Int64? = nil,
        stop: StopSequences? = nil, n: Int? = nil, logprobs: Bool? = nil, topLogprobs: Int? = nil, stream: Bool? = nil,
        streamOptions: StreamOptions? = nil, thinking: String? = nil, thinkingPrefill: String? = nil,
        chatTemplateKwargs: ChatTemplateArguments? = nil, presencePenalty: Double? = nil, frequencyPenalty: Double? = nil,
        repetitionPenalty: Double? = nil
    ) {
        self.model = model; self.messages = messages; self.maxTokens = maxTokens
        self.maxCompletionTokens = maxCompletionTokens; self.temperature = temperature; self.topP = topP
        self.topK = topK; self.minP = minP; self.seed = seed; self.stop = stop; self.n = n; self.logprobs = logprobs
        self.topLogprobs = topLogprobs; self.stream = stream; self.streamOptions = streamOptions
        self.thinking = thinking; self.thinkingPrefill = thinkingPrefill; self.chatTemplateKwargs = chatTemplateKwargs
        self.presencePenalty = presencePenalty; self.frequencyPenalty = frequencyPenalty; self.repetitionPenalty = repetitionPenalty
    }

    enum CodingKeys: String, CodingKey {
        case model, messages, temperature, seed, stop, n, logprobs, stream, thinking
        case maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", topP = "top_p", topK = "top_k"
        case minP = "min_p", topLogprobs = "top_logprobs", streamOptions = "stream_options"
        case thinkingPrefill = "thinking_prefill", chatTemplateKwargs = "chat_template_kwargs"
        case presencePenalty = "presence_penalty", frequencyPenalty = "frequency_penalty", repetitionPenalty = "repetition_penalty"
    }
}

/// `stop`: OpenAI accepts one string or a list.
public struct StopSequences: Codable, Equatable, Sendable {
    public var values: [String]

    public init(_ values: [String]) { self.values = values }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(String.self) {
            values = [one]
        } else {
            values = try container.decode([String].self)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(values)
    }
}

public struct StreamOptions: Codable, Equatable, Sendable {
    /// Send a last chunk with `usage` and no choices.
    public var includeUsage: Bool?

    public init(includeUsage: Bool?) { self.includeUsage = includeUsage }

    enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
}

public struct ChatTemplateArguments: Codable, Equatable, Sendable {
    public var enableThinking: Bool?

    public init(enableThinking: Bool?) { self.enableThinking = enableThinking }

    enum CodingKeys: String, CodingKey { case enableThinking = "enable_thinking" }
}

/// One message of a request. `content` may arrive as a string or as a list of
/// `{"type": "text", "text": ...}` parts (joined); it is always encoded as a string.
public struct ChatCompletionMessage: Codable, Equatable, Sendable {
    public var role: String
    public var content: String?
    /// Extension (DeepSeek/Qwen/vLLM): an assistant turn's chain of thought.
    public var reasoningContent: String?

    public init(role: String, content: String?, reasoningContent: String? = nil) {
        self.role = role
        self.content = content
        self.reasoningContent = reasoningContent
    }

    enum CodingKeys: String, CodingKey { case role, content, reasoningContent = "reasoning_content" }

    struct ContentPart: Codable {
        var type: String
        var text: String?
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        role = try container.decode(String.self, forKey: .role)
        reasoningContent = try container.decodeIfPresent(String.self, forKey: .reasoningContent)
        if try !container.contains(.content) || container.decodeNil(forKey: .content) {
            content = nil
        } else if let text = try? container.decode(String.self, forKey: .content) {
            content = text
        } else {
            let parts = try container.decode([ContentPart].self, forKey: .content)
            if let other = parts.first(where: { $0.type != "text" }) {
                throw DecodingError.dataCorruptedError(
                    forKey: .content, in: container, debugDescription: "content part type '\(other.type)' is not supported; only 'text'")
            }
            content = parts.compactMap(\.text).joined()
        }
    }
}

/// A non-streamed chat completion.
public struct ChatCompletionResponse: Codable, Equatable, Sendable {
    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [ChatCompletionChoice]
    public var usage: ChatCompletionUsage?

    public init(id: String, object: String = "chat.completion", created: Int, model: String, choices: [ChatCompletionChoice], usage: ChatCompletionUsage?) {
        self.id = id; self.object = object; self.created = created; self.model = model; self.choices = choices; self.usage = usage
    }
}

public struct ChatCompletionChoice: Codable, Equatable, Sendable {
    public var index: Int
    public var message: ChatCompletionResponseMessage
    public var logprobs: ChoiceLogprobs?
    /// "stop" or "length".
    public var finishReason: String?

    public init(index: Int, message: ChatCompletionResponseMessage, logprobs: ChoiceLogprobs?, finishReason: String?) {
        self.index = index; self.message = message; self.logprobs = logprobs; self.finishReason = finishReason
    }

    enum CodingKeys: String, CodingKey { case index, message, logprobs, finishReason = "finish_reason" }

    // OpenAI sends explicit nulls for these; some clients look for the keys.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(index, forKey: .index)
        try container.encode(message, forKey: .message)
        try container.encode(logprobs, forKey: .logprobs)
        try container.encode(finishReason, forKey: .finishReason)
    }
}

public struct ChatCompletionResponseMessage: Codable, Equatable, Sendable {
    public var role: String
    public var content: String?
    /// The chain of thought, when the reply had a think block (DeepSeek/Qwen convention).
    public var reasoningContent: String?

    public init(role: String = "assistant", content: String?, reasoningContent: String? = nil) {
        self.role = role; self.content = content; self.reasoningContent = reasoningContent
    }

    enum CodingKeys: String, CodingKey { case role, content, reasoningContent = "reasoning_content" }
}

public struct ChoiceLogprobs: Codable, Equatable, Sendable {
    /// One entry per generated token.
    public var content: [TokenLogprob]?

    public init(content: [TokenLogprob]?) { self.content = content }
}

public struct TokenLogprob: Codable, Equatable, Sendable {
    public var token: String
    public var logprob: Double
    /// UTF-8 bytes of the token (a token may hold part of a character).
    public var bytes: [UInt8]?
    public var topLogprobs: [TopLogprob]

    public init(token: String, logprob: Double, bytes: [UInt8]?, topLogprobs: [TopLogprob]) {
        self.token = token; self.logprob = logprob; self.bytes = bytes; self.topLogprobs = topLogprobs
    }

    enum CodingKeys: String, CodingKey { case token, logprob, bytes, topLogprobs = "top_logprobs" }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        token = try container.decode(String.self, forKey: .token)
        logprob = try container.decode(Double.self, forKey: .logprob)
        bytes = try container.decodeIfPresent([UInt8].self, forKey: .bytes)
        // Some servers send null or omit the list when no alternatives were asked for.
        topLogprobs = try container.decodeIfPresent([TopLogprob].self, forKey: .topLogprobs) ?? []
    }
}

public struct TopLogprob: Codable, Equatable, Sendable {
    public var token: String
    public var logprob: Double
    public var bytes: [UInt8]?

    public init(token: String, logprob: Double, bytes: [UInt8]?) {
        self.token = token; self.logprob = logprob; self.bytes = bytes
    }
}

public struct ChatCompletionUsage: Codable, Equatable, Sendable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = promptTokens + completionTokens
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
    }
}

/// One Server-Sent Event of a streamed completion (`data: {chunk}`).
public struct ChatCompletionChunk: Codable, Equatable, Sendable {
    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [ChatCompletionChunkChoice]
    public var usage: ChatCompletionUsage?

    public init(id: String, created: Int, model: String, choices: [ChatCompletionChunkChoice], usage: ChatCompletionUsage? = nil) {
        self.id = id; self.object = "chat.completion.chunk"; self.created = created; self.model = model
        self.choices = choices; self.usage = usage
    }
}

public struct ChatCompletionChunkChoice: Codable, Equatable, Sendable {
    public var index: Int
    public var delta: ChatCompletionDelta
    public var logprobs: ChoiceLogprobs?
    public var finishReason: String?

    public init(index: Int, delta: ChatCompletionDelta, logprobs: ChoiceLogprobs? = nil, finishReason: String? = nil) {
        self.index = index; self.delta = delta; self.logprobs = logprobs; self.finishReason = finishReason
    }

    enum CodingKeys: String, CodingKey { case index, delta, logprobs, finishReason = "finish_reason" }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(index, forKey: .index)
        try container.encode(delta, forKey: .delta)
        try container.encode(logprobs, forKey: .logprobs)
        try container.encode(finishReason, forKey: .finishReason)
    }
}

public struct ChatCompletionDelta: Codable, Equatable, Sendable {
    public var role: String?
    public var content: String?
    public var reasoningContent: String?

    public init(role: String? = nil, content: String? = nil, reasoningContent: String? = nil) {
        self.role = role; self.content = content; self.reasoningContent = reasoningContent
    }

    enum CodingKeys: String, CodingKey { case role, content, reasoningContent = "reasoning_content" }
}

/// The body of every error response: `{"error": {"message", "type", "param", "code"}}`.
public struct OpenAIErrorResponse: Codable, Equatable, Sendable {
    public struct Detail: Codable, Equatable, Sendable {
        public var message: String
        public var type: String
        /// The request field at fault (e.g. "temperature", "messages[1].role").
        public var param: String?
        public var code: String?

        public init(message: String, type: String, param: String?, code: String?) {
            self.message = message; self.type = type; self.param = param; self.code = code
        }

        public func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(message, forKey: .message)
            try container.encode(type, forKey: .type)
            try container.encode(param, forKey: .param)
            try container.encode(code, forKey: .code)
        }
    }

    public var error: Detail

    public init(error: Detail) { self.error = error }
}

/// GET /v1/models.
public struct ModelList: Codable, Equatable, Sendable {
    public struct Model: Codable, Equatable, Sendable {
        public var id: String
        public var object: String
        public var created: Int
        public var ownedBy: String

        enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by" }
    }

    public var object: String
    public var data: [Model]
}

/// A POST /v1/completions body (OpenAI's legacy text completions): raw text in, its
/// continuation out, no chat template.
public struct CompletionRequest: Codable, Equatable, Sendable {
    public var model: String?
    /// One string, or a list of strings completed as one batch (choices in prompt order).
    public var prompt: StopSequences
    public var maxTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var topK: Int?
    public var minP: Double?
    public var seed: Int64?
    public var stop: StopSequences?
    public var n: Int?
    /// How many alternatives to report per token (0...5 in OpenAI's API); nil: no logprobs.
    public var logprobs: Int?
    public var echo: Bool?
    public var suffix: String?
    public var bestOf: Int?
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    public var presencePenalty: Double?
    public var frequencyPenalty: Double?
    public var repetitionPenalty: Double?

    enum CodingKeys: String, CodingKey {
        case model, prompt, temperature, seed, stop, n, logprobs, echo, suffix, stream
        case maxTokens = "max_tokens", topP = "top_p", topK = "top_k", minP = "min_p", bestOf = "best_of"
        case streamOptions = "stream_options", presencePenalty = "presence_penalty", frequencyPenalty = "frequency_penalty"
        case repetitionPenalty = "repetition_penalty"
    }
}

/// OpenAI's legacy per-token logprobs of a text completion.
public struct CompletionLogprobs: Codable, Equatable, Sendable {
    public var tokens: [String]
    public var tokenLogprobs: [Double]
    public var topLogprobs: [[String: Double]]
    public var textOffset: [Int]

    enum CodingKeys: String, CodingKey {
        case tokens, tokenLogprobs = "token_logprobs", topLogprobs = "top_logprobs", textOffset = "text_offset"
    }
}

public struct CompletionChoice: Codable, Equatable, Sendable {
    public var text: String
    public var index: Int
    public var logprobs: CompletionLogprobs?
    public var finishReason: String?

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(text, forKey: .text); try c.encode(index, forKey: .index)
        try c.encode(logprobs, forKey: .logprobs); try c.encode(finishReason, forKey: .finishReason)
    }

    enum CodingKeys: String, CodingKey { case text, index, logprobs, finishReason = "finish_reason" }
}

/// A text completion, or (with `object` "text_completion" too, as OpenAI sends) one streamed chunk.
public struct CompletionResponse: Codable, Equatable, Sendable {
    public var id: String
    public var object = "text_completion"
    public var created: Int
    public var model: String
    public var choices: [CompletionChoice]
    public var usage: ChatCompletionUsage?
}
