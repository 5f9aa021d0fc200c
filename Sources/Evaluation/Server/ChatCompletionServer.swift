import Foundation
import Hummingbird
import LoRA
import Logging
import Models
import Tensors
import Tokenizers

/// An OpenAI-compatible HTTP server over one loaded model (with any adapter already attached):
/// GET /v1/models, POST /v1/chat/completions (streamed or not), GET /health. See docs/server.md.
///
/// Requests are served one at a time: generation runs on one serial queue that owns the model,
/// so concurrent requests wait their turn instead of sharing KV caches or threads.
///
/// Usage:
/// ```
/// let server = try ChatCompletionServer(model: loaded, modelName: "smollm2")
/// try await server.run(host: "127.0.0.1", port: 0) { port in print("listening on \(port)") }
/// ```
public final class ChatCompletionServer: @unchecked Sendable {
    public let modelName: String
    public let limits: ChatCompletionLimits
    // `loaded` is touched only on `modelQueue`, whose work items turn subnormal flushing on
    // (docs/architecture.md, "Subnormal floats"): dispatch threads do not inherit it from main.
    private let loaded: LoadedModel
    private let tokenizer: BPETokenizer
    private let template: ChatTemplate
    private let modelQueue = DispatchQueue(label: "thoughtcrime.serve.model")
    private let startedAt = Int(Date().timeIntervalSince1970)
    private let logger: Logger
    /// Adapters a request can name as its `model`, each attached for that request only.
    public let adapters: [String: LoRAWeights]

    /// Throws when the model has no tokenizer (a GGUF without `tokenizer.ggml.*`, a directory
    /// without tokenizer.json).
    public init(model: LoadedModel, modelName: String, adapters: [String: LoRAWeights] = [:],
                limits: ChatCompletionLimits = ChatCompletionLimits(), logger: Logger = Logger(label: "thoughtcrime.serve")) throws {
        self.loaded = model
        self.adapters = adapters
        self.tokenizer = try model.requireTokenizer()
        // ChatML is what every supported family uses; SmolLM2's default system message is the
        // safe guess for a template the loader did not recognise.
        self.template = model.chatTemplate ?? .smolLM2
        self.modelName = modelName
        self.limits = limits
        self.logger = logger
    }

    /// Serves until the surrounding task is cancelled or the process gets SIGINT/SIGTERM.
    /// `onListening` receives the bound port (useful with port 0, which picks a free one).
    public func run(host: String = "127.0.0.1", port: Int = 8080, onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let router = Router()
        addRoutes(to: router)
        let app = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "thoughtcrime"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) },
            logger: logger)
        try await app.runService()
    }

    /// Adds the endpoints to `router`, so they can share an application with other routes or middleware.
    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        // Added first, so it wraps every route and the not-found responder.
        router.add(middleware: OpenAIErrorMiddleware(logger: logger))
        router.get("/health") { _, _ in Self.json(["status": "ok"]) }
        router.get("/v1/models") { [self] _, _ in
            let ids = [modelName] + adapters.keys.sorted()
            return Self.json(ModelList(object: "list", data: ids.map { .init(id: $0, object: "model", created: startedAt, ownedBy: "thoughtcrime") }))
        }
        // The openai client's models.retrieve(id); an id may hold slashes ("org/model").
        router.get("/v1/models/**") { [self] _, context in
            let id = context.parameters.getCatchAll().joined(separator: "/")
            if let unknown = unknownModel(id, route: "GET /v1/models/\(id)") { return unknown }
            return Self.json(ModelList.Model(id: id.isEmpty ? modelName : id, object: "model", created: startedAt, ownedBy: "thoughtcrime"))
        }
        router.post("/v1/chat/completions") { [self] request, _ in try await chatCompletions(request) }
        router.post("/v1/completions") { [self] request, _ in try await textCompletions(request) }
        // A known path asked with another method is a 405, not a 404 (the router only knows the
        // routes above, so the other methods are routed here to say so).
        let allowed: [(String, HTTPRequest.Method)] = [("/health", .get), ("/v1/models", .get), ("/v1/models/**", .get),
                                                        ("/v1/chat/completions", .post), ("/v1/completions", .post)]
        for (path, method) in allowed {
            for other in [HTTPRequest.Method.get, .post, .put, .delete, .patch] where other != method {
                router.on(RouterPath(path), method: other) { _, _ -> Response in throw HTTPError(.methodNotAllowed) }
            }
        }
    }

    // MARK: - Chat completions

    private func chatCompletions(_ request: Request) async throws -> Response {
        let body: ByteBuffer
        switch await collectBody(request, route: "POST /v1/chat/completions") {
        case .success(let b): body = b
        case .failure(let tooLarge): return tooLarge.response
        }
        let plan: ChatCompletionPlan
        switch Self.plan(body: Data(body.readableBytesView), tokenizer: tokenizer, template: template,
                         contextLength: loaded.model.config.contextLength, limits: limits) {
        case .success(let p): plan = p
        case .failure(let rejection):
            logger.notice("400 POST /v1/chat/completions: \(Self.logText(rejection))")
            return Self.error(.badRequest, param: rejection.param, rejection.message)
        }
        if let unknown = unknownModel(plan.model, route: "POST /v1/chat/completions") { return unknown }
        let id = "chatcmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        if plan.stream { return stream(plan, id: id) }
        do {
            let response = try await onModelQueue { try self.complete(plan, id: id) }
            return Self.json(response)
        } catch let error as ModelError {
            if case .invalidInput(let message) = error { return Self.error(.badRequest, param: nil, message) }
            logger.error("generation failed: \(error)")
            return Self.error(.internalServerError, param: nil, "generation failed: \(error)")
        }
    }

    /// A 413 answer, as the failure of `collectBody`.
    struct BodyTooLarge: Error { let response: Response }

    /// The request body, or the logged 413 when it exceeds the limit.
    private func collectBody(_ request: Request, route: String) async -> Result<ByteBuffer, BodyTooLarge> {
        var request = request
        do {
            return .success(try await request.collectBody(upTo: limits.maximumBodyBytes))
        } catch {
            logger.notice("413 \(route): the request body exceeds \(limits.maximumBodyBytes) bytes")
            return .failure(BodyTooLarge(response: Self.error(.contentTooLarge, param: nil, "the request body exceeds \(limits.maximumBodyBytes) bytes")))
        }
    }

    private func onModelQueue<T>(_ work: @escaping () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            modelQueue.async {
                SubnormalFlushing.setForCurrentThread(true)
                continuation.resume(with: Result { try work() })
            }
        }
    }

    private var detokenize: ([Int32]) -> String {
        { [tokenizer] ids in (try? tokenizer.decode(ids)) ?? "" }
    }

    /// Runs on `modelQueue`: the named adapter is attached for this request and detached after.
    private func generate(_ plan: ChatCompletionPlan, onStep: ((GeneratedToken) -> Void)?) throws -> [GenerationResult] {
        var lora: LoRAModel?
        if let name = plan.model, name != modelName, let weights = adapters[name] {
            lora = try LoRAModel(attaching: weights, to: loaded.model)
        }
        defer { lora?.detach() }
        return try Generator(model: loaded.model, detokenize: detokenize).generate(
            prompts: plan.sequences, sampling: plan.sampling, stop: plan.stop,
            topLogProbabilities: plan.topLogprobs, onStep: onStep)
    }

    /// The name of what answers `plan`: its adapter, or the base model.
    func served(_ plan: ChatCompletionPlan) -> String {
        guard let name = plan.model, !name.isEmpty, adapters[name] != nil else { return modelName }
        return name
    }

    /// A 404 naming the served models when `model` is set and names none of them.
    private func unknownModel(_ model: String?, route: String) -> Response? {
        guard let model, !model.isEmpty, model != modelName, adapters[model] == nil else { return nil }
        let served = ([modelName] + adapters.keys.sorted()).map { "'\($0)'" }.joined(separator: ", ")
        let message = "the model '\(model)' is not served here; this server has \(served) (GET /v1/models)"
        logger.notice("404 \(route): \(message)")
        return Self.json(OpenAIErrorResponse(error: .init(message: message, type: "invalid_request_error", param: "model", code: "model_not_found")),
                         status: .notFound)
    }

    private func complete(_ plan: ChatCompletionPlan, id: String) throws -> ChatCompletionResponse {
        let start = Date()
        let results = try generate(plan, onStep: nil)
        logCompletion(id, plan, results, since: start)
        let choices = results.enumerated().map { i, result in
            let parts = plan.splitter.split(result.text, isFinal: true)
            return ChatCompletionChoice(
                index: i, message: ChatCompletionResponseMessage(content: parts.content, reasoningContent: parts.reasoning),
                logprobs: plan.topLogprobs == nil ? nil : ChoiceLogprobs(content: result.logProbabilities.map(tokenLogprob)),
                finishReason: Self.finishReason(result.finishReason))
        }
        return ChatCompletionResponse(
            id: id, created: Int(Date().timeIntervalSince1970), model: served(plan), choices: choices,
            usage: usage(plan, results))
    }

    /// Server-Sent Events: a role chunk per choice, a chunk per generated token (its text delta,
    /// possibly empty while text is held back, and its logprobs), a last chunk per choice with
    /// the rest of its text and finish_reason, an optional usage chunk, then `[DONE]`.
    private func stream(_ plan: ChatCompletionPlan, id: String) -> Response {
        let (events, continuation) = AsyncStream<ByteBuffer>.makeStream()
        let created = Int(Date().timeIntervalSince1970)
        let send: @Sendable (ChatCompletionChunk) -> Void = { chunk in continuation.yield(Self.event(chunk)) }
        let chunk: @Sendable ([ChatCompletionChunkChoice]) -> ChatCompletionChunk = { [answering = served(plan)] choices in
            ChatCompletionChunk(id: id, created: created, model: answering, choices: choices)
        }
        modelQueue.async { [self] in
            SubnormalFlushing.setForCurrentThread(true)  // dispatch threads start without it
            defer {
                continuation.yield(ByteBuffer(string: "data: [DONE]\n\n"))
                continuation.finish()
            }
            send(chunk((0..<plan.choices).map { ChatCompletionChunkChoice(index: $0, delta: ChatCompletionDelta(role: "assistant", content: "")) }))
            var sent = Array(repeating: StreamedReply(), count: plan.choices)
            var ids = Array(repeating: [Int32](), count: plan.choices)
            var logprobsSent = Array(repeating: 0, count: plan.choices)
            do {
                let start = Date()
                let results = try generate(plan) { token in
                    let s = token.sequence
                    ids[s].append(token.id)
                    let delta = sent[s].advance(to: plan.splitter.split(self.detokenize(ids[s]), isFinal: false))
                    let logprobs = token.logProbabilities.map { ChoiceLogprobs(content: [self.tokenLogprob($0)]) }
                    if logprobs != nil { logprobsSent[s] += 1 }
                    guard delta.reasoning != nil || delta.content != nil || logprobs != nil else { return }
                    send(chunk([ChatCompletionChunkChoice(
                        index: s, delta: ChatCompletionDelta(content: delta.content, reasoningContent: delta.reasoning), logprobs: logprobs)]))
                }
                logCompletion(id, plan, results, since: start)
                for (i, result) in results.enumerated() {
                    let delta = sent[i].advance(to: plan.splitter.split(result.text, isFinal: true))
                    // The token that completed a stop string is never streamed on its own.
                    let rest = result.logProbabilities.dropFirst(logprobsSent[i]).map(tokenLogprob)
                    send(chunk([ChatCompletionChunkChoice(
                        index: i, delta: ChatCompletionDelta(content: delta.content, reasoningContent: delta.reasoning),
                        logprobs: plan.topLogprobs == nil || rest.isEmpty ? nil : ChoiceLogprobs(content: rest),
                        finishReason: Self.finishReason(result.finishReason))]))
                }
                if plan.includeUsageInStream {
                    var last = chunk([])
                    last.usage = usage(plan, results)
                    send(last)
                }
            } catch {
                // Headers are already sent; the error travels as an event, as OpenAI's does.
                logger.error("generation failed: \(error)")
                let body = OpenAIErrorResponse(error: .init(message: "generation failed: \(error)", type: "server_error", param: nil, code: nil))
                continuation.yield(Self.event(body))
            }
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: events))
    }

    // MARK: - Response pieces

    private func logCompletion(_ id: String, _ plan: ChatCompletionPlan, _ results: [GenerationResult], since start: Date) {
        let seconds = Date().timeIntervalSince(start)
        let tokens = results.reduce(0) { $0 + $1.ids.count }
        logger.info("\(id): model \(served(plan)), \(plan.choices) choice(s), \(plan.promptIDs.count) prompt + \(tokens) new tokens in \(String(format: "%.2f", seconds)) s\(plan.stream ? " (streamed)" : "")")
    }

    private func tokenLogprob(_ step: GeneratedTokenLogProbabilities) -> TokenLogprob {
        func entry(_ token: TokenLogProbability) -> TopLogprob {
            TopLogprob(token: detokenize([token.id]), logprob: Self.finite(token.logProbability), bytes: try? tokenizer.tokenBytes(token.id))
        }
        let chosen = entry(step.chosen)
        return TokenLogprob(token: chosen.token, logprob: chosen.logprob, bytes: chosen.bytes, topLogprobs: step.top.map(entry))
    }

    /// JSON cannot carry -infinity; OpenAI reports hopeless tokens as -9999.
    private static func finite(_ logProbability: Float) -> Double {
        logProbability.isFinite ? Double(logProbability) : -9999
    }

    private func usage(_ plan: ChatCompletionPlan, _ results: [GenerationResult]) -> ChatCompletionUsage {
        ChatCompletionUsage(promptTokens: plan.promptTokenCount, completionTokens: results.reduce(0) { $0 + $1.ids.count })
    }

    private static func finishReason(_ reason: GenerationResult.FinishReason) -> String {
        switch reason {
        case .stopToken, .stopString, .interrupted: return "stop"
        case .length: return "length"
        }
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    private static func encoded<T: Encodable>(_ value: T) -> Data {
        // Every type encoded here holds only strings, finite numbers and arrays of them.
        (try? encoder.encode(value)) ?? Data("{}".utf8)
    }

    private static func event<T: Encodable>(_ value: T) -> ByteBuffer {
        var buffer = ByteBuffer(string: "data: ")
        buffer.writeBytes(encoded(value))
        buffer.writeString("\n\n")
        return buffer
    }

    /// Decodes and validates a request body into what to generate, or the 400 to answer.
    static func plan(body bodyData: Data, tokenizer: BPETokenizer, template: ChatTemplate, contextLength: Int,
                     limits: ChatCompletionLimits) -> Result<ChatCompletionPlan, ChatCompletionRequestError> {
        guard String(data: bodyData, encoding: .utf8) != nil else {
            return .failure(.init(param: nil, "the body is not valid UTF-8; JSON requests must be UTF-8 encoded"))
        }
        if let rejection = unpairedSurrogate(in: bodyData) { return .failure(rejection) }
        let decoded: ChatCompletionRequest
        do {
            if let object = try? JSONSerialization.jsonObject(with: bodyData) as? [String: Any] {
                try ChatCompletionPlan.refuseUnsupportedFields(object)
            }
            decoded = try JSONDecoder().decode(ChatCompletionRequest.self, from: bodyData)
        } catch let error as ChatCompletionRequestError {
            return .failure(error)
        } catch let error as DecodingError {
            let (param, message) = Self.describe(error, body: bodyData)
            return .failure(.init(param: param, message))
        } catch {
            return .failure(.init(param: nil, "the body is not a valid chat completion request: \(error)"))
        }
        do {
            return .success(try ChatCompletionPlan.make(
                decoded, tokenizer: tokenizer, template: template, contextLength: contextLength, limits: limits))
        } catch let error as ChatCompletionRequestError {
            return .failure(error)
        } catch {
            return .failure(.init(param: nil, "\(error)"))
        }
    }

    /// What the server would answer a request body with: nil when it would generate, else the
    /// 400 error. For tests and the fuzzing harness; generates nothing.
    ///
    /// Usage: `ChatCompletionServer.rejection(of: body, tokenizer: t, template: .smolLM2, contextLength: 2048)`
    public static func rejection(of body: Data, tokenizer: BPETokenizer, template: ChatTemplate, contextLength: Int,
                                 limits: ChatCompletionLimits = .init()) -> ChatCompletionRequestError? {
        if case .failure(let rejection) = plan(body: body, tokenizer: tokenizer, template: template, contextLength: contextLength, limits: limits) {
            return rejection
        }
        return nil
    }

    /// A 400 for a `\uD800`-style escape without its other half: no character can be made of it,
    /// and Foundation's decoder then reports a misleading type error far from the cause.
    static func unpairedSurrogate(in body: Data) -> ChatCompletionRequestError? {
        let bytes = [UInt8](body)
        func unit(at i: Int) -> UInt16? {  // the code unit of "\\uXXXX" starting at i
            guard i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { return nil }
            return UInt16(String(decoding: bytes[(i + 2)..<(i + 6)], as: UTF8.self), radix: 16)
        }
        var i = 0
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "\\"), i + 1 < bytes.count else { i += 1; continue }
            guard bytes[i + 1] == UInt8(ascii: "u"), let u = unit(at: i) else { i += 2; continue }
            if (0xD800...0xDBFF).contains(u), let next = unit(at: i + 6), (0xDC00...0xDFFF).contains(next) { i += 12; continue }
            if (0xD800...0xDFFF).contains(u) {
                let escape = String(decoding: bytes[i..<(i + 6)], as: UTF8.self)
                return .init(param: nil, "the body holds the escape \(escape) at byte \(i) without the other half of its UTF-16 surrogate pair, so it is no character; send the pair or the character itself")
            }
            i += 6
        }
        return nil
    }

    /// "param: message" for the log, without repeating a param the message already starts with.
    static func logText(_ rejection: ChatCompletionRequestError) -> String {
        guard let param = rejection.param, !rejection.message.hasPrefix(param) else { return rejection.message }
        return "\(param): \(rejection.message)"
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: encoded(value))))
    }

    static func error(_ status: HTTPResponse.Status, param: String?, _ message: String) -> Response {
        let type = status == .internalServerError ? "server_error" : "invalid_request_error"
        return json(OpenAIErrorResponse(error: .init(message: message, type: type, param: param, code: nil)), status: status)
    }

    /// The field a decoding error is about, as a JSON path ("messages[0].content"), and a message naming it.
    static func describe(_ error: DecodingError, body: Data) -> (param: String?, message: String) {
        func path(_ codingPath: [CodingKey]) -> String? {
            guard !codingPath.isEmpty else { return nil }
            return codingPath.reduce("") { result, key in
                if let index = key.intValue { return result + "[\(index)]" }
                return result.isEmpty ? key.stringValue : result + "." + key.stringValue
            }
        }
        switch error {
        case let .keyNotFound(key, context):
            let field = path(context.codingPath + [key]) ?? key.stringValue
            return (field, "\(field) is required")
        case let .typeMismatch(type, context):
            let field = path(context.codingPath)
            return (field, "\(field ?? "the body") has the wrong type (expected \(Self.jsonTypeName(type)))")
        case let .valueNotFound(type, context):
            let field = path(context.codingPath)
            return (field, "\(field ?? "the body") must not be null (expected \(Self.jsonTypeName(type)))")
        case let .dataCorrupted(context):
            let field = path(context.codingPath)
            if let field { return (field, "\(field): \(context.debugDescription)") }
            guard let object = try? JSONSerialization.jsonObject(with: body) else { return (nil, "the body is not valid JSON") }
            // Foundation reports a number that does not fit an integer field without its path.
            if let fields = object as? [String: Any] {
                for name in ["max_tokens", "max_completion_tokens", "n", "top_k", "top_logprobs", "seed"] {
                    guard let number = fields[name] as? NSNumber, !(fields[name] is Bool) else { continue }
                    let value = number.doubleValue
                    if value != value.rounded() || abs(value) >= 9.2e18 {
                        return (name, "\(name) must be a whole number that fits in 64 bits, got \(number)")
                    }
                }
            }
            return (nil, "the body is not a valid chat completion request: \(context.debugDescription)")
        @unknown default:
            return (nil, "the body is not a valid chat completion request")
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Double.Type: return "a number"
        default: return "\(type)"
        }
    }
}

/// Answers errors thrown by routing (an unknown path, a method a path does not take) with an
/// OpenAI-style `{"error": {...}}` body instead of an empty one, and logs them.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let route = "\(request.method) \(request.uri.path)"
            let message: String
            switch error.status {
            case .notFound:
                message = "no route \(route); this server answers GET /health, GET /v1/models, POST /v1/chat/completions and POST /v1/completions"
            case .methodNotAllowed:
                message = "\(request.uri.path) does not take \(request.method)"
            default:
                message = error.body ?? error.status.reasonPhrase
            }
            logger.notice("\(error.status.code) \(route): \(message)")
            return ChatCompletionServer.error(error.status, param: nil, message)
        }
    }
}

// MARK: - Text completions

extension ChatCompletionServer {
    /// POST /v1/completions: the prompt as raw text (no chat template), OpenAI's legacy shape.
    fileprivate func textCompletions(_ request: Request) async throws -> Response {
        let body: ByteBuffer
        switch await collectBody(request, route: "POST /v1/completions") {
        case .success(let b): body = b
        case .failure(let tooLarge): return tooLarge.response
        }
        let plan: ChatCompletionPlan
        switch Self.completionPlan(body: Data(body.readableBytesView), tokenizer: tokenizer, contextLength: loaded.model.config.contextLength, limits: limits) {
        case .success(let p): plan = p
        case .failure(let rejection):
            logger.notice("400 POST /v1/completions: \(Self.logText(rejection))")
            return Self.error(.badRequest, param: rejection.param, rejection.message)
        }
        if let unknown = unknownModel(plan.model, route: "POST /v1/completions") { return unknown }
        let id = "cmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let served = served(plan)
        if plan.stream { return streamText(plan, id: id, model: served) }
        do {
            let start = Date()
            let results = try await onModelQueue { try self.generateText(plan) }
            logCompletion(id, plan, results, since: start)
            let choices = results.enumerated().map { i, r in
                CompletionChoice(text: plan.splitter.split(r.text, isFinal: true).content ?? "", index: i,
                                 logprobs: plan.topLogprobs == nil ? nil : legacyLogprobs(r.logProbabilities), finishReason: Self.finishReason(r.finishReason))
            }
            return Self.json(CompletionResponse(id: id, created: Int(Date().timeIntervalSince1970), model: served, choices: choices,
                                                usage: usage(plan, results)))
        } catch {
            logger.error("generation failed: \(error)")
            return Self.error(.internalServerError, param: nil, "generation failed: \(error)")
        }
    }

    fileprivate func generateText(_ plan: ChatCompletionPlan) throws -> [GenerationResult] { try generate(plan, onStep: nil) }

    /// Streamed text completion: one chunk per token with the new text, then one per choice
    /// with its finish_reason, an optional usage chunk, then `[DONE]`.
    fileprivate func streamText(_ plan: ChatCompletionPlan, id: String, model: String) -> Response {
        let (events, continuation) = AsyncStream<ByteBuffer>.makeStream()
        let created = Int(Date().timeIntervalSince1970)
        let send: @Sendable (CompletionResponse) -> Void = { chunk in continuation.yield(Self.event(chunk)) }
        modelQueue.async { [self] in
            SubnormalFlushing.setForCurrentThread(true)  // dispatch threads start without it
            defer {
                continuation.yield(ByteBuffer(string: "data: [DONE]\n\n"))
                continuation.finish()
            }
            let count = plan.sequences.count
            var sent = Array(repeating: StreamedReply(), count: count)
            var ids = Array(repeating: [Int32](), count: count)
            do {
                let start = Date()
                let results = try generate(plan) { token in
                    let s = token.sequence
                    ids[s].append(token.id)
                    let delta = sent[s].advance(to: plan.splitter.split(self.detokenize(ids[s]), isFinal: false))
                    guard let text = delta.content, !text.isEmpty else { return }
                    send(CompletionResponse(id: id, created: created, model: model,
                                            choices: [CompletionChoice(text: text, index: s, logprobs: nil, finishReason: nil)]))
                }
                logCompletion(id, plan, results, since: start)
                for (i, result) in results.enumerated() {
                    let delta = sent[i].advance(to: plan.splitter.split(result.text, isFinal: true))
                    send(CompletionResponse(id: id, created: created, model: model, choices: [CompletionChoice(
                        text: delta.content ?? "", index: i, logprobs: plan.topLogprobs == nil ? nil : legacyLogprobs(result.logProbabilities),
                        finishReason: Self.finishReason(result.finishReason))]))
                }
                if plan.includeUsageInStream {
                    send(CompletionResponse(id: id, created: created, model: model, choices: [], usage: usage(plan, results)))
                }
            } catch {
                logger.error("generation failed: \(error)")
                continuation.yield(Self.event(OpenAIErrorResponse(error: .init(message: "generation failed: \(error)", type: "server_error", param: nil, code: nil))))
            }
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: events))
    }

    /// OpenAI's legacy logprobs: the tokens, their log-probabilities, the alternatives by token
    /// text, and each token's offset in the completion text.
    fileprivate func legacyLogprobs(_ steps: [GeneratedTokenLogProbabilities]) -> CompletionLogprobs {
        var offset = 0
        var out = CompletionLogprobs(tokens: [], tokenLogprobs: [], topLogprobs: [], textOffset: [])
        for step in steps {
            let text = detokenize([step.chosen.id])
            out.tokens.append(text)
            out.tokenLogprobs.append(step.chosen.logProbability.isFinite ? Double(step.chosen.logProbability) : -9999)
            var top: [String: Double] = [:]
            for t in step.top { top[detokenize([t.id])] = t.logProbability.isFinite ? Double(t.logProbability) : -9999 }
            out.topLogprobs.append(top)
            out.textOffset.append(offset)
            offset += text.count
        }
        return out
    }

    /// Decodes and validates a text completion body into what to generate, or the 400 to answer.
    static func completionPlan(body: Data, tokenizer: BPETokenizer, contextLength: Int,
                               limits: ChatCompletionLimits) -> Result<ChatCompletionPlan, ChatCompletionRequestError> {
        guard String(data: body, encoding: .utf8) != nil else {
            return .failure(.init(param: nil, "the body is not valid UTF-8; JSON requests must be UTF-8 encoded"))
        }
        if let rejection = unpairedSurrogate(in: body) { return .failure(rejection) }
        do {
            if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] {
                try ChatCompletionPlan.refuseUnsupportedFields(object)
            }
            let request = try JSONDecoder().decode(CompletionRequest.self, from: body)
            return .success(try ChatCompletionPlan.completion(request, tokenizer: tokenizer, contextLength: contextLength, limits: limits))
        } catch let error as ChatCompletionRequestError {
            return .failure(error)
        } catch let error as DecodingError {
            let (param, message) = describe(error, body: body)
            return .failure(.init(param: param, message))
        } catch {
            return .failure(.init(param: nil, "the body is not a valid completion request: \(error)"))
        }
    }
}
