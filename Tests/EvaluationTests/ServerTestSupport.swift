import Evaluation
import Foundation
import Hummingbird
import Logging
import ModelFormats
import Models
import Tensors
import TestSupport
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The tiny model file of TestSupport, under the name the server tests use.
enum TinyServedModel {
    static func write(to path: String, seed: UInt64 = 7) throws { try TinyModelFile.write(to: path, seed: seed) }

    /// The model, written and loaded once per test process.
    static let loaded: Result<LoadedModel, Error> = Result {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tc-serve-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try write(to: path)
        return try ModelLoader.load(path: path)
    }
}

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
