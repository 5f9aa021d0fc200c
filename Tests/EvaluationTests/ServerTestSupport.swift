import Evaluation
import Foundation
import Hummingbird
import Logging
import ModelFormats
import Models
import Tensors
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A complete tiny model file (Llama GGUF, byte-level tokenizer, SmolLM2's chat template), as
/// Tests/TrainingTests/TinyRun.swift builds it, so the server runs the real loading path.
enum TinyServedModel {
    /// GPT-2's byte-to-symbol map: printable bytes stand for themselves, the rest are shifted
    /// past 255 so every byte has a visible symbol.
    static var byteSymbols: [String] {
        let visible = Set(Array(33...126) + Array(161...172) + Array(174...255))
        var symbols = [Int](repeating: 0, count: 256)
        var next = 256
        for b in 0..<256 {
            if visible.contains(b) { symbols[b] = b } else { symbols[b] = next; next += 1 }
        }
        return symbols.compactMap { UnicodeScalar(UInt32($0)).map { String($0) } }
    }

    static func write(to path: String, seed: UInt64 = 7) throws {
        let tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + byteSymbols + ["Ġt"]
        let vocab = tokens.count, d = 32, ffn = 64, heads = 4, kv = 2, hd = 8
        let writer = GGUFWriter()
        try writer.setMetadata("general.architecture", .string("llama"))
        for (k, v) in [("block_count", 2), ("context_length", 512), ("embedding_length", d), ("feed_forward_length", ffn),
                       ("attention.head_count", heads), ("attention.head_count_kv", kv)] {
            try writer.setMetadata("llama.\(k)", .uint32(UInt32(v)))
        }
        try writer.setMetadata("llama.rope.freq_base", .float32(10_000))
        try writer.setMetadata("llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        try writer.setMetadata("tokenizer.ggml.model", .string("gpt2"))
        try writer.setMetadata("tokenizer.ggml.pre", .string("smollm"))
        try writer.setMetadata("tokenizer.ggml.tokens", .array(tokens.map { .string($0) }))
        try writer.setMetadata("tokenizer.ggml.merges", .array([.string("Ġ t")]))
        try writer.setMetadata("tokenizer.ggml.token_type", .array(tokens.indices.map { .int32($0 < 3 ? 3 : 1) }))
        try writer.setMetadata("tokenizer.ggml.bos_token_id", .uint32(1))
        try writer.setMetadata("tokenizer.ggml.eos_token_id", .uint32(2))
        try writer.setMetadata("tokenizer.ggml.padding_token_id", .uint32(2))
        try writer.setMetadata("tokenizer.chat_template", .string("{% for m in messages %}<|im_start|>... named SmolLM ...{% endfor %}"))
        var rng = SeededGenerator(seed: seed)
        func random(_ shape: Shape, _ bound: Float) -> Tensor {
            let t = Tensor(uninitialized: shape)
            for i in 0..<t.count { t[flat: i] = Float(rng.nextUnit() * 2 - 1) * bound }
            return t
        }
        func ones(_ n: Int) -> Tensor { Tensor(shape: [n], repeating: 1) }
        // The output head is tied to the embedding: near-zero rows for the special tokens keep
        // their logits near 0, so replies rarely end early and tests can rely on their length.
        let embedding = random([vocab, d], 1)
        for i in 0..<(3 * d) { embedding[flat: i] *= 0.01 }
        try writer.addTensor("token_embd.weight", embedding)
        for l in 0..<2 {
            let b = "blk.\(l)"
            try writer.addTensor("\(b).attn_norm.weight", ones(d))
            try writer.addTensor("\(b).attn_q.weight", random([heads * hd, d], 0.35))
            try writer.addTensor("\(b).attn_k.weight", random([kv * hd, d], 0.35))
            try writer.addTensor("\(b).attn_v.weight", random([kv * hd, d], 0.35))
            try writer.addTensor("\(b).attn_output.weight", random([d, heads * hd], 0.35))
            try writer.addTensor("\(b).ffn_norm.weight", ones(d))
            try writer.addTensor("\(b).ffn_gate.weight", random([ffn, d], 0.35))
            try writer.addTensor("\(b).ffn_up.weight", random([ffn, d], 0.35))
            try writer.addTensor("\(b).ffn_down.weight", random([d, ffn], 0.25))
        }
        try writer.addTensor("output_norm.weight", ones(d))
        try writer.write(to: path)
    }

    /// The model, written and loaded once per test process.
    static let loaded: Result<LoadedModel, Error> = Result {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tc-serve-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try write(to: path)
        return try ModelLoader.load(path: path)
    }
}

/// A Hummingbird application on 127.0.0.1 with a free port, stopped by cancelling its task.
struct TestHTTPServer {
    let port: Int
    let task: Task<Void, Error>

    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)/v1")! }

    static var quietLogger: Logger {
        var logger = Logger(label: "thoughtcrime.test-server")
        // Cancelling a Hummingbird server (how tests stop it) logs shutdown errors; SIGINT does not.
        logger.logLevel = .critical
        return logger
    }

    static func start(_ configure: (Router<BasicRequestContext>) -> Void) async throws -> TestHTTPServer {
        let router = Router()
        configure(router)
        let (ports, announce) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in announce.yield(channel.localAddress?.port ?? 0) }, logger: quietLogger)
        let task = Task { try await app.run() }
        return try await TestHTTPServer(port: firstPort(ports, task: task), task: task)
    }

    /// The real `ChatCompletionServer.run` (as `thoughtcrime serve` calls it) on port 0.
    static func start(_ server: ChatCompletionServer) async throws -> TestHTTPServer {
        let (ports, announce) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run(host: "127.0.0.1", port: 0) { announce.yield($0) } }
        return try await TestHTTPServer(port: firstPort(ports, task: task), task: task)
    }

    private static func firstPort(_ ports: AsyncStream<Int>, task: Task<Void, Error>) async throws -> Int {
        // The server announces its port once it listens; give up after 10 s rather than hang.
        let timeout = Task { try await Task.sleep(nanoseconds: 10_000_000_000); task.cancel() }
        defer { timeout.cancel() }
        for await port in ports where port > 0 { return port }
        throw XCTSkip("the test server did not start")
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

/// Counts requests that reach the routes after it.
final class RequestCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]

    func record(_ path: String) { lock.lock(); counts[path, default: 0] += 1; lock.unlock() }
    func count(_ path: String) -> Int { lock.lock(); defer { lock.unlock() }; return counts[path] ?? 0 }

    struct Middleware<Context: RequestContext>: RouterMiddleware {
        let counter: RequestCounter
        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            counter.record(request.uri.path)
            return try await next(request, context)
        }
    }
}

/// Raw HTTP against a test server, for checking exact response shapes.
enum HTTP {
    struct Reply {
        let status: Int
        let body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    }

    static func post(_ url: URL, json object: Any) async throws -> Reply {
        try await post(url, body: JSONSerialization.data(withJSONObject: object))
    }

    static func post(_ url: URL, body: Data) async throws -> Reply {
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.timeoutInterval = 30
        let (data, response) = try await URLSession.shared.data(for: request)
        return Reply(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
    }

    static func get(_ url: URL) async throws -> Reply {
        let (data, response) = try await URLSession.shared.data(from: url)
        return Reply(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
    }

    /// The `data:` payloads of a Server-Sent Events body, in order.
    static func events(_ body: Data) -> [String] {
        String(decoding: body, as: UTF8.self).components(separatedBy: "\n")
            .filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
    }
}
