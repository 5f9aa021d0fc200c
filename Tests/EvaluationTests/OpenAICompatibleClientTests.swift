import Evaluation
import Foundation
import Hummingbird
import XCTest

/// The judges' HTTP client against real servers on 127.0.0.1: `thoughtcrime serve`'s routes
/// behind a request counter, and small endpoints that fail on purpose.
final class OpenAICompatibleClientTests: XCTestCase {
    static let keyVariable = "THOUGHTCRIME_TEST_KEY"
    static let key = "sk-test-4f1c9e0b-never-print-me"

    var cacheDirectory: URL!
    var servers: [TestHTTPServer] = []

    override func setUp() async throws {
        cacheDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("tc-judge-cache-\(UUID().uuidString)")
        setenv(Self.keyVariable, Self.key, 1)
    }

    override func tearDown() async throws {
        for server in servers { await server.stop() }
        try? FileManager.default.removeItem(at: cacheDirectory)
        unsetenv(Self.keyVariable)
    }

    func start(_ configure: (Router<BasicRequestContext>) -> Void) async throws -> TestHTTPServer {
        let server = try await TestHTTPServer.start(configure)
        servers.append(server)
        return server
    }

    /// The real chat-completions routes over the tiny model, counting requests.
    func startModelServer(counter: RequestCounter) async throws -> TestHTTPServer {
        let chatServer = try ChatCompletionServer(model: try TinyServedModel.loaded.get(), modelName: "tiny", logger: TestHTTPServer.quietLogger)
        return try await start { router in
            router.add(middleware: RequestCounter.Middleware(counter: counter))
            chatServer.addRoutes(to: router)
        }
    }

    func client(_ baseURL: URL, retries: Int = 3, cache: Bool = true) -> OpenAICompatibleClient {
        OpenAICompatibleClient(configuration: OpenAICompatibleClientConfiguration(
            name: "test-judge", baseURL: baseURL, model: "tiny", apiKeyEnvironmentVariable: Self.keyVariable, timeout: 10,
            maxRetries: retries, initialBackoff: 0.01, maxBackoff: 0.05, cacheDirectory: cache ? cacheDirectory : nil))
    }

    let question = [ChatCompletionMessage(role: "user", content: "Rate this answer from 0 to 100.")]

    /// A canned successful reply, as any OpenAI-compatible server would send it.
    static let cannedReply = """
        {"id":"x","object":"chat.completion","created":1,"model":"tiny","choices":[{"index":0,\
        "message":{"role":"assistant","content":"42"},"logprobs":null,"finish_reason":"stop"}],\
        "usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}
        """

    func cacheFiles() -> [URL] {
        let enumerator = FileManager.default.enumerator(at: cacheDirectory, includingPropertiesForKeys: nil)
        return (enumerator?.allObjects as? [URL] ?? []).filter { $0.pathExtension == "json" }
    }

    func testFirstTokenTopLogprobsComeFromTheServersLogprobs() async throws {
        let counter = RequestCounter()
        let server = try await startModelServer(counter: counter)
        let top = try await client(server.baseURL).firstTokenTopLogprobs(messages: question, topLogprobs: 20)
        XCTAssertEqual(top.count, 20)
        XCTAssertEqual(top.map(\.logprob), top.map(\.logprob).sorted(by: >))
        XCTAssertTrue(top.allSatisfy { $0.logprob <= 0 })
        let text = try await client(server.baseURL, cache: false).complete(messages: question, maxTokens: 5)
        XCTAssertFalse(text.isEmpty)
    }

    func testASecondIdenticalRequestIsAnsweredFromTheCacheWithoutHTTP() async throws {
        let counter = RequestCounter()
        let server = try await startModelServer(counter: counter)
        let path = "/v1/chat/completions"
        let first = try await client(server.baseURL).firstTokenTopLogprobs(messages: question)
        XCTAssertEqual(counter.count(path), 1)
        let again = try await client(server.baseURL).firstTokenTopLogprobs(messages: question)  // a new client: the cache is on disk
        XCTAssertEqual(counter.count(path), 1, "answered from the cache")
        XCTAssertEqual(again, first)
        XCTAssertEqual(cacheFiles().count, 1)

        _ = try await client(server.baseURL).firstTokenTopLogprobs(messages: [ChatCompletionMessage(role: "user", content: "Another question")])
        XCTAssertEqual(counter.count(path), 2, "a different request is sent")
        _ = try await client(server.baseURL).complete(messages: question, maxTokens: 1)
        XCTAssertEqual(counter.count(path), 3, "other parameters make another key")
        XCTAssertEqual(cacheFiles().count, 3)
    }

    func testCachedAnswersNeedNoKeyAndNoServer() async throws {
        let counter = RequestCounter()
        let server = try await startModelServer(counter: counter)
        let answer = try await client(server.baseURL).complete(messages: question, maxTokens: 3)
        unsetenv(Self.keyVariable)
        await server.stop()
        let rerun = try await client(server.baseURL, retries: 0).complete(messages: question, maxTokens: 3)
        XCTAssertEqual(rerun, answer)
    }

    func testConnectionErrors429And5xxAreRetriedWithBackoff() async throws {
        let counter = RequestCounter()
        let server = try await start { router in
            router.add(middleware: RequestCounter.Middleware(counter: counter))
            router.post("/v1/chat/completions") { _, _ -> Response in
                // 503, 429, then success.
                switch counter.count("/v1/chat/completions") {
                case 1: return Response(status: .serviceUnavailable, body: ResponseBody(byteBuffer: ByteBuffer(string: "overloaded")))
                case 2: return Response(status: .tooManyRequests, body: ResponseBody(byteBuffer: ByteBuffer(string: "slow down")))
                default: return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: Self.cannedReply)))
                }
            }
        }
        let start = Date()
        let text = try await client(server.baseURL, retries: 3).complete(messages: question)
        XCTAssertEqual(text, "42")
        XCTAssertEqual(counter.count("/v1/chat/completions"), 3)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.03, "waited 0.01 s, then 0.02 s")
    }

    func testTheErrorAfterTheLastRetryNamesTheURLAndTheLastFailure() async throws {
        let counter = RequestCounter()
        let server = try await start { router in
            router.add(middleware: RequestCounter.Middleware(counter: counter))
            router.post("/v1/chat/completions") { _, _ in
                Response(status: .serviceUnavailable, body: ResponseBody(byteBuffer: ByteBuffer(string: "model is loading")))
            }
        }
        do {
            _ = try await client(server.baseURL, retries: 2).complete(messages: question)
            XCTFail("a server that always answers 503 is unavailable")
        } catch let EvaluationError.judgeUnavailable(judge, reason) {
            XCTAssertEqual(judge, "test-judge")
            XCTAssertTrue(reason.contains("http://127.0.0.1:\(server.port)/v1/chat/completions"), reason)
            XCTAssertTrue(reason.contains("3 time(s)"), reason)
            XCTAssertTrue(reason.contains("HTTP 503: model is loading"), reason)
        }
        XCTAssertEqual(counter.count("/v1/chat/completions"), 3)
        XCTAssertTrue(cacheFiles().isEmpty, "failures are not cached")
    }

    func testAClosedPortGivesJudgeUnavailableAfterRetries() async throws {
        let closed = try await TestHTTPServer.start { _ in }
        await closed.stop()  // nothing listens on its port any more
        do {
            _ = try await client(closed.baseURL, retries: 2).complete(messages: question)
            XCTFail("nothing listens")
        } catch let EvaluationError.judgeUnavailable(judge, reason) {
            XCTAssertEqual(judge, "test-judge")
            XCTAssertTrue(reason.contains("127.0.0.1:\(closed.port)"), reason)
            XCTAssertTrue(reason.contains("connection failed"), reason)
        }
    }

    func testOtherHTTPErrorsAreNotRetriedAndNeverEchoTheKey() async throws {
        let counter = RequestCounter()
        let server = try await start { router in
            router.add(middleware: RequestCounter.Middleware(counter: counter))
            // A careless server that repeats the credentials it was given.
            router.post("/v1/chat/completions") { request, _ in
                let authorization = request.headers[.authorization] ?? "none"
                return Response(status: .unauthorized, body: ResponseBody(byteBuffer: ByteBuffer(string: "bad key: \(authorization)")))
            }
            // The same, with the key where an error excerpt is cut short.
            router.post("/long/v1/chat/completions") { request, _ in
                let authorization = request.headers[.authorization] ?? "none"
                let body = String(repeating: ".", count: 290) + "bad key: \(authorization)"
                return Response(status: .forbidden, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
            }
        }
        do {
            _ = try await client(server.baseURL).complete(messages: question)
            XCTFail("401 is an error")
        } catch {
            let description = "\(error) \(String(describing: error)) \((error as? LocalizedError)?.errorDescription ?? "")"
            XCTAssertTrue(description.contains("HTTP 401"), description)
            XCTAssertTrue(description.contains("bad key: Bearer [redacted]"), "the key was sent, and cut from the error: \(description)")
            XCTAssertFalse(description.contains(Self.key), description)
        }
        XCTAssertEqual(counter.count("/v1/chat/completions"), 1, "4xx is not retried")
        do {
            _ = try await client(server.baseURL.deletingLastPathComponent().appendingPathComponent("long/v1")).complete(messages: question)
            XCTFail("403 is an error")
        } catch {
            let description = "\(error)"
            XCTAssertTrue(description.contains("HTTP 403"), description)
            XCTAssertFalse(description.contains(String(Self.key.prefix(8))), "not even the start of the key: \(description)")
        }
    }

    func testTheKeyIsNeverWrittenToTheCache() async throws {
        let counter = RequestCounter()
        let server = try await startModelServer(counter: counter)
        _ = try await client(server.baseURL).firstTokenTopLogprobs(messages: question)
        let files = cacheFiles()
        XCTAssertEqual(files.count, 1)
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            XCTAssertFalse(text.contains(Self.key))
            XCTAssertTrue(text.contains("\"request\"") && text.contains("\"response\""))
        }
    }

    func testAMissingKeyVariableIsNamedWithoutSendingAnything() async throws {
        unsetenv(Self.keyVariable)
        let counter = RequestCounter()
        let server = try await startModelServer(counter: counter)
        do {
            _ = try await client(server.baseURL).complete(messages: question)
            XCTFail("no key")
        } catch let EvaluationError.judgeUnavailable(_, reason) {
            XCTAssertTrue(reason.contains(Self.keyVariable), reason)
        }
        XCTAssertEqual(counter.count("/v1/chat/completions"), 0)
    }
}
