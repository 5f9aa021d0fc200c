import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where a judge lives and how patiently to ask it.
public struct OpenAICompatibleClientConfiguration: Sendable, Equatable {
    /// The judge's name in errors and reports.
    public var name: String
    /// The API root including its version, as OpenAI's SDKs take it: "https://api.openai.com/v1",
    /// "http://127.0.0.1:8080/v1". Requests go to `<baseURL>/chat/completions`.
    public var baseURL: URL
    public var model: String
    /// The NAME of the environment variable holding the API key (e.g. "OPENAI_API_KEY"); nil
    /// sends no key. The key is read when the first request goes out and is never logged,
    /// cached or put into an error.
    public var apiKeyEnvironmentVariable: String?
    /// Seconds one HTTP request may take.
    public var timeout: TimeInterval
    /// Further attempts after the first fails with a connection error, 429 or 5xx.
    public var maxRetries: Int
    /// Seconds before the first retry; doubled for each later one, up to `maxBackoff`.
    public var initialBackoff: TimeInterval
    public var maxBackoff: TimeInterval
    /// Responses are stored here, one JSON file per request hash; nil disables caching.
    public var cacheDirectory: URL?

    public init(
        name: String? = nil, baseURL: URL, model: String, apiKeyEnvironmentVariable: String? = nil, timeout: TimeInterval = 120,
        maxRetries: Int = 4, initialBackoff: TimeInterval = 1, maxBackoff: TimeInterval = 30, cacheDirectory: URL? = nil
    ) {
        self.name = name ?? model
        self.baseURL = baseURL
        self.model = model
        self.apiKeyEnvironmentVariable = apiKeyEnvironmentVariable
        self.timeout = timeout
        self.maxRetries = maxRetries
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.cacheDirectory = cacheDirectory
    }
}

/// A client for any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp,
/// `thoughtcrime serve`), as the evaluator's judges use it: plain text replies, or the top
/// log-probabilities of the first reply token for the probability-weighted 0-100 judge.
///
/// Failures with a connection error, HTTP 429 or 5xx are retried with exponential backoff;
/// other HTTP errors are not. When it gives up it throws
/// `EvaluationError.judgeUnavailable(judge:reason:)` naming the URL and the last failure.
/// With a `cacheDirectory`, every successful response is stored under the SHA-256 of the
/// canonical request (model, messages and parameters), so rerunning an evaluation sends
/// nothing for requests already answered, including sampled ones.
///
/// Usage:
/// ```
/// let judge = OpenAICompatibleClient(configuration: .init(
///     baseURL: URL(string: "https://api.openai.com/v1")!, model: "gpt-4o-2024-08-06",
///     apiKeyEnvironmentVariable: "OPENAI_API_KEY", cacheDirectory: URL(fileURLWithPath: "cache/judge")))
/// let top = try await judge.firstTokenTopLogprobs(messages: [.init(role: "user", content: prompt)])
/// ```
public final class OpenAICompatibleClient: @unchecked Sendable {
    public let configuration: OpenAICompatibleClientConfiguration
    private let environment: [String: String]
    private let session: URLSession
    private let cache: JudgeResponseCache?

    /// `environment` is where the API key variable is looked up (the process's by default).
    public init(configuration: OpenAICompatibleClientConfiguration, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.configuration = configuration
        self.environment = environment
        let sessionConfiguration = URLSessionConfiguration.ephemeral
        sessionConfiguration.timeoutIntervalForRequest = configuration.timeout
        sessionConfiguration.timeoutIntervalForResource = configuration.timeout
        self.session = URLSession(configuration: sessionConfiguration)
        self.cache = configuration.cacheDirectory.map(JudgeResponseCache.init(directory:))
    }

    deinit {
        session.finishTasksAndInvalidate()
    }

    /// The endpoint requests are sent to.
    public var endpoint: URL { configuration.baseURL.appendingPathComponent("chat/completions") }

    /// The judge's reply text (of the first choice) at temperature `temperature`.
    ///
    /// Usage: `let verdict = try await judge.complete(messages: [.init(role: "user", content: "Is this code secure?")])`
    public func complete(messages: [ChatCompletionMessage], maxTokens: Int? = nil, temperature: Double = 0) async throws -> String {
        let response = try await chatCompletion(ChatCompletionRequest(messages: messages, maxTokens: maxTokens, temperature: temperature))
        guard let content = response.choices.first?.message.content else {
            throw EvaluationError.judgeUnavailable(judge: configuration.name, reason: "\(endpoint) returned no message content")
        }
        return content
    }

    /// The `topLogprobs` most likely first tokens of the judge's reply with their
    /// log-probabilities (one token is generated: `logprobs: true, max_tokens: 1`).
    ///
    /// Usage: `let top = try await judge.firstTokenTopLogprobs(messages: messages)  // [TopLogprob] for "0"..."100"`
    public func firstTokenTopLogprobs(messages: [ChatCompletionMessage], topLogprobs: Int = 20) async throws -> [TopLogprob] {
        let response = try await chatCompletion(ChatCompletionRequest(
            messages: messages, maxTokens: 1, temperature: 0, logprobs: true, topLogprobs: topLogprobs))
        guard let first = response.choices.first?.logprobs?.content?.first else {
            throw EvaluationError.judgeUnavailable(
                judge: configuration.name, reason: "\(endpoint) returned no logprobs; does the server support logprobs/top_logprobs?")
        }
        return first.topLogprobs
    }

    /// Sends `request` (its model set to the configured one, never streamed), or answers it
    /// from the cache.
    public func chatCompletion(_ request: ChatCompletionRequest) async throws -> ChatCompletionResponse {
        var request = request
        request.model = configuration.model
        request.stream = nil
        request.streamOptions = nil
        let body = try JudgeResponseCache.canonicalBody(request)
        let key = JudgeResponseCache.key(of: body)
        if let cache, let cached = cache.response(forKey: key) { return cached }

        let (data, response) = try await send(body)
        do {
            try cache?.store(response: data, request: body, key: key)
        } catch {
            throw EvaluationError.io(path: cache?.directory.path ?? "", reason: "cannot write the judge cache: \(error.localizedDescription)")
        }
        return response
    }

    // MARK: - HTTP with retries

    private func send(_ body: Data) async throws -> (Data, ChatCompletionResponse) {
        var request = URLRequest(url: endpoint)
        request.httpMethod = "POST"
        request.httpBody = body
        request.timeoutInterval = configuration.timeout
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let key = try apiKey()
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }

        var lastFailure = "no attempt was made"
        let attempts = max(0, configuration.maxRetries) + 1
        for attempt in 0..<attempts {
            if attempt > 0 { try await Task.sleep(nanoseconds: UInt64(backoff(beforeRetry: attempt) * 1e9)) }
            let data: Data, response: URLResponse
            do {
                (data, response) = try await session.data(for: request)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                lastFailure = "connection failed: \(error.localizedDescription)"
                continue
            }
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            if (200..<300).contains(status) {
                do {
                    return (data, try JSONDecoder().decode(ChatCompletionResponse.self, from: data))
                } catch {
                    throw unavailable("\(endpoint) answered HTTP \(status) with a body that is not a chat completion: \(excerpt(data, key: key))", key: key)
                }
            }
            lastFailure = "HTTP \(status): \(excerpt(data, key: key))"
            guard status == 429 || (500..<600).contains(status) else {
                throw unavailable("\(endpoint) refused the request (\(lastFailure)); not retried", key: key)
            }
            if let retryAfter = (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Retry-After").flatMap(Double.init),
               attempt + 1 < attempts {
                // The server said when to come back; wait that long (within reason) on top of the backoff.
                try await Task.sleep(nanoseconds: UInt64(min(retryAfter, configuration.maxBackoff) * 1e9))
            }
        }
        throw unavailable("\(endpoint) failed \(attempts) time(s); last failure: \(lastFailure)", key: key)
    }

    /// Seconds to wait before retry number `attempt` (1-based).
    func backoff(beforeRetry attempt: Int) -> TimeInterval {
        min(configuration.maxBackoff, configuration.initialBackoff * pow(2, Double(attempt - 1)))
    }

    private func apiKey() throws -> String? {
        guard let variable = configuration.apiKeyEnvironmentVariable else { return nil }
        guard let key = environment[variable], !key.isEmpty else {
            throw EvaluationError.judgeUnavailable(
                judge: configuration.name, reason: "the API key variable \(variable) is not set (needed for \(configuration.baseURL))")
        }
        return key
    }

    /// The error, with the key cut out of anything a server may have echoed back.
    private func unavailable(_ reason: String, key: String?) -> EvaluationError {
        var reason = reason
        if let key, !key.isEmpty { reason = reason.replacingOccurrences(of: key, with: "[redacted]") }
        return .judgeUnavailable(judge: configuration.name, reason: reason)
    }

    /// The start of a response body for an error message. The key is cut out before the body is
    /// shortened, so not even part of it can survive.
    private func excerpt(_ data: Data, key: String?) -> String {
        var text = String(decoding: data, as: UTF8.self)
        if let key, !key.isEmpty { text = text.replacingOccurrences(of: key, with: "[redacted]") }
        text = text.replacingOccurrences(of: "\n", with: " ")
        if text.isEmpty { return "(empty body)" }
        return text.count > 300 ? text.prefix(300) + "..." : text
    }
}

/// Judge responses on disk: `<directory>/<first two hex digits>/<sha256>.json`, each holding the
/// canonical request and the response exactly as the server sent it.
struct JudgeResponseCache {
    let directory: URL

    /// The request as sorted-key JSON: equal requests give equal bytes, hence equal keys.
    static func canonicalBody(_ request: ChatCompletionRequest) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(request)
    }

    /// The cache key of a canonical body: its SHA-256 in lowercase hex, so caches written by
    /// any version of the evaluator (and by hand, with `sha256sum`) agree.
    static func key(of body: Data) -> String {
        SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined()
    }

    func file(forKey key: String) -> URL {
        directory.appendingPathComponent(String(key.prefix(2))).appendingPathComponent(key + ".json")
    }

    /// The stored response, or nil when there is none or it cannot be read (then it is refetched).
    func response(forKey key: String) -> ChatCompletionResponse? {
        guard let data = try? Data(contentsOf: file(forKey: key)),
              let entry = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let response = entry["response"],
              let responseData = try? JSONSerialization.data(withJSONObject: response)
        else { return nil }
        return try? JSONDecoder().decode(ChatCompletionResponse.self, from: responseData)
    }

    func store(response: Data, request: Data, key: String) throws {
        let entry: [String: Any] = [
            "request": try JSONSerialization.jsonObject(with: request),
            "response": try JSONSerialization.jsonObject(with: response),
        ]
        let data = try JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys])
        let url = file(forKey: key)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        // Written whole then renamed, so an interrupted run never leaves half a file behind.
        try data.write(to: url, options: .atomic)
    }
}
