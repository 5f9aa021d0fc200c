import Evaluation
import Foundation
import Logging
import XCTest

/// What OpenAI clients expect of the server beyond the happy path (issue 17, item 7): error
/// objects on every 4xx, refusals of fields it does not implement, penalties it does, and a
/// log line for each rejected request.
final class ServerConventionTests: XCTestCase {
    var server: TestHTTPServer!
    let log = LogCapture()

    var completions: URL { server.baseURL.appendingPathComponent("chat/completions") }

    override func setUp() async throws {
        let model = try TinyServedModel.loaded.get()
        let capture = log
        var logger = Logger(label: "thoughtcrime.test-serve") { _ in CapturingLogHandler(capture: capture) }
        logger.logLevel = .info
        server = try await TestHTTPServer.start(try ChatCompletionServer(model: model, modelName: "tiny", logger: logger))
    }

    override func tearDown() async throws { await server?.stop() }

    private func request(_ extra: [String: Any] = [:], tokens: Int = 12) -> [String: Any] {
        var body: [String: Any] = ["messages": [["role": "user", "content": "Say something."]], "temperature": 0, "max_tokens": tokens]
        body.merge(extra) { $1 }
        return body
    }

    func testAnUnknownRouteAnswers404WithAnErrorObject() async throws {
        let reply = try await HTTP.get(server.baseURL.appendingPathComponent("completions-typo"))
        XCTAssertEqual(reply.status, 404)
        let error = try XCTUnwrap(reply.json["error"] as? [String: Any], reply.text)
        XCTAssertTrue((error["message"] as? String)?.contains("no route GET /v1/completions-typo") ?? false, reply.text)
        XCTAssertEqual(error["type"] as? String, "invalid_request_error")
        XCTAssertTrue(log.lines.contains { $0.contains("404 GET /v1/completions-typo") }, "\(log.lines)")
    }

    func testAKnownRouteWithTheWrongMethodAnswersWithAnErrorObject() async throws {
        let reply = try await HTTP.post(server.baseURL.appendingPathComponent("models"), json: [:])
        XCTAssertEqual(reply.status, 405, reply.text)
        XCTAssertEqual((reply.json["error"] as? [String: Any])?["message"] as? String, "/v1/models does not take POST", reply.text)
        let get = try await HTTP.get(server.baseURL.appendingPathComponent("chat/completions"))
        XCTAssertEqual(get.status, 405, get.text)
    }

    func testFieldsTheServerDoesNotImplementAreRefusedNamingThem() async throws {
        let cases: [(String, Any)] = [
            ("tools", [["type": "function", "function": ["name": "f", "parameters": [:]]]]),
            ("tool_choice", "auto"),
            ("response_format", ["type": "json_object"]),
            ("logit_bias", ["42": 10]),
            ("modalities", ["text", "audio"]),
            ("reasoning_effort", "high"),
        ]
        for (field, value) in cases {
            let reply = try await HTTP.post(completions, json: request([field: value]))
            XCTAssertEqual(reply.status, 400, "\(field): \(reply.text)")
            let error = try XCTUnwrap(reply.json["error"] as? [String: Any], reply.text)
            XCTAssertEqual(error["param"] as? String, field, reply.text)
            XCTAssertTrue((error["message"] as? String)?.hasPrefix("\(field): ") ?? false, reply.text)
        }
    }

    func testTheValuesThatAskForNothingAreAccepted() async throws {
        let reply = try await HTTP.post(completions, json: request(
            ["tools": [], "tool_choice": "none", "response_format": ["type": "text"], "logit_bias": [:], "modalities": ["text"], "user": "u1"],
            tokens: 3))
        XCTAssertEqual(reply.status, 200, reply.text)
    }

    func testPenaltiesOutOfRangeAreRefused() async throws {
        for (field, value) in [("presence_penalty", 2.5), ("frequency_penalty", -3), ("repetition_penalty", 0)] as [(String, Double)] {
            let reply = try await HTTP.post(completions, json: request([field: value]))
            XCTAssertEqual(reply.status, 400, "\(field): \(reply.text)")
            XCTAssertEqual((reply.json["error"] as? [String: Any])?["param"] as? String, field, reply.text)
        }
    }

    func testAFrequencyPenaltyChangesAGreedyReplyThatRepeatsItself() async throws {
        func ids(_ extra: [String: Any]) async throws -> [Int] {
            let reply = try await HTTP.post(completions, json: request(extra.merging(["logprobs": true]) { $1 }, tokens: 24))
            XCTAssertEqual(reply.status, 200, reply.text)
            let choice = try XCTUnwrap((reply.json["choices"] as? [[String: Any]])?.first)
            let content = try XCTUnwrap((choice["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])
            return content.compactMap { ($0["bytes"] as? [Int])?.hashValue }
        }
        let plain = try await ids([:])
        XCTAssertLessThan(Set(plain).count, plain.count, "the premise: greedy decoding of the tiny model repeats tokens")
        let penalised = try await ids(["frequency_penalty": 2, "presence_penalty": 2])
        XCTAssertNotEqual(plain, penalised)
    }

    func testRejectedRequestsAreLoggedWithTheirReason() async throws {
        _ = try await HTTP.post(completions, json: request(["temperature": -1]))
        XCTAssertTrue(log.lines.contains { $0.contains("400 POST /v1/chat/completions: temperature must be in") }, "\(log.lines)")
    }
}

/// Log lines, kept for assertions.
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return stored }
    func append(_ line: String) { lock.lock(); stored.append(line); lock.unlock() }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        capture.append("\(level) \(message)")
    }
}
