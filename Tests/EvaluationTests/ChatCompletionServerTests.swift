import Evaluation
import Foundation
import LoRA
import Models
import XCTest

/// `thoughtcrime serve`'s HTTP API, served by the real `ChatCompletionServer` over a tiny model
/// on 127.0.0.1 with a free port.
final class ChatCompletionServerTests: XCTestCase {
    var server: TestHTTPServer!
    /// Servers a test starts besides `server`, stopped after it.
    var otherServers: [TestHTTPServer] = []

    var completions: URL { server.baseURL.appendingPathComponent("chat/completions") }

    override func setUp() async throws {
        let model = try TinyServedModel.loaded.get()
        let chatServer = try ChatCompletionServer(model: model, modelName: "tiny", logger: TestHTTPServer.quietLogger)
        server = try await TestHTTPServer.start(chatServer)
    }

    override func tearDown() async throws {
        await server?.stop()
        for other in otherServers { await other.stop() }
    }

    /// A greedy request for `tokens` new tokens, with `extra` fields merged in.
    func request(_ extra: [String: Any] = [:], tokens: Int = 12) -> [String: Any] {
        var body: [String: Any] = [
            "model": "tiny", "messages": [["role": "user", "content": "Say something."]], "temperature": 0, "max_tokens": tokens,
        ]
        body.merge(extra) { $1 }
        return body
    }

    func complete(_ body: [String: Any]) async throws -> ChatCompletionResponse {
        let reply = try await HTTP.post(completions, json: body)
        XCTAssertEqual(reply.status, 200, reply.text)
        return try JSONDecoder().decode(ChatCompletionResponse.self, from: reply.body)
    }

    func testModelsListsTheServedModel() async throws {
        let reply = try await HTTP.get(server.baseURL.appendingPathComponent("models"))
        XCTAssertEqual(reply.status, 200)
        XCTAssertEqual(reply.json["object"] as? String, "list")
        let models = try XCTUnwrap(reply.json["data"] as? [[String: Any]])
        XCTAssertEqual(models.map { $0["id"] as? String }, ["tiny"])
        XCTAssertEqual(models.first?["object"] as? String, "model")
    }

    func testAChatCompletionHasOpenAIsShape() async throws {
        let reply = try await HTTP.post(completions, json: request())
        XCTAssertEqual(reply.status, 200, reply.text)
        let json = reply.json
        XCTAssertTrue((json["id"] as? String)?.hasPrefix("chatcmpl-") ?? false)
        XCTAssertEqual(json["object"] as? String, "chat.completion")
        XCTAssertEqual(json["model"] as? String, "tiny")
        XCTAssertNotNil(json["created"] as? Int)
        let choice = try XCTUnwrap((json["choices"] as? [[String: Any]])?.first)
        XCTAssertEqual(choice["index"] as? Int, 0)
        XCTAssertTrue(choice.keys.contains("logprobs"), "logprobs is sent as null when not requested")
        XCTAssertTrue(choice["logprobs"] is NSNull)
        let message = try XCTUnwrap(choice["message"] as? [String: Any])
        XCTAssertEqual(message["role"] as? String, "assistant")
        XCTAssertFalse((message["content"] as? String ?? "").isEmpty)
        XCTAssertNil(message["reasoning_content"], "no think block, no reasoning")
        let usage = try XCTUnwrap(json["usage"] as? [String: Int])
        XCTAssertEqual(usage["completion_tokens"], 12)
        XCTAssertGreaterThan(usage["prompt_tokens"] ?? 0, 10)
        XCTAssertEqual(usage["total_tokens"], (usage["prompt_tokens"] ?? 0) + 12)
        XCTAssertEqual(choice["finish_reason"] as? String, "length")
    }

    func testMaxTokensEndsTheReplyWithFinishReasonLength() async throws {
        for field in ["max_tokens", "max_completion_tokens"] {
            var body = request()
            body.removeValue(forKey: "max_tokens")
            body[field] = 3
            let response = try await complete(body)
            XCTAssertEqual(response.choices[0].finishReason, "length", field)
            XCTAssertEqual(response.usage?.completionTokens, 3, field)
        }
    }

    func testSeveralChoicesAreGeneratedTogetherAndCountedInUsage() async throws {
        let response = try await complete(request(["n": 3, "temperature": 1, "seed": 5], tokens: 8))
        XCTAssertEqual(response.choices.map(\.index), [0, 1, 2])
        XCTAssertEqual(response.usage?.completionTokens, 24)
        XCTAssertEqual(Set(response.choices.compactMap(\.message.content)).count, 3, "each choice samples on its own")
    }

    func testTheSameSeedGivesTheSameSampledReplies() async throws {
        let body = request(["n": 2, "temperature": 1, "top_p": 0.95, "top_k": 50, "min_p": 0.01, "seed": 1234], tokens: 10)
        let first = try await complete(body)
        let second = try await complete(body)
        XCTAssertEqual(first.choices.map(\.message), second.choices.map(\.message))
        var otherSeed = body
        otherSeed["seed"] = 99
        let third = try await complete(otherSeed)
        XCTAssertNotEqual(first.choices.map(\.message), third.choices.map(\.message))
        otherSeed["seed"] = -7  // OpenAI's seeds are signed 64-bit integers
        let negative = try await complete(otherSeed)
        XCTAssertEqual(negative.choices.count, 2)
    }

    func testAStopStringCutsTheReplyBeforeIt() async throws {
        let unstopped = try await complete(request(tokens: 16))
        let free = try XCTUnwrap(unstopped.choices[0].message.content)
        let stop = try XCTUnwrap(Self.stopCandidate(in: free), "no plain two-character stretch in \(free.debugDescription)")
        let cut = try XCTUnwrap(free.range(of: stop)).lowerBound
        let expected = String(free[..<cut])
        for stopField: Any in [stop, ["never-generated", stop]] {
            let response = try await complete(request(["stop": stopField], tokens: 16))
            XCTAssertEqual(response.choices[0].message.content, expected)
            XCTAssertEqual(response.choices[0].finishReason, "stop")
        }
    }

    func testLogprobsReportEveryTokenWithItsTopAlternatives() async throws {
        let response = try await complete(request(["logprobs": true, "top_logprobs": 5], tokens: 6))
        let tokens = try XCTUnwrap(response.choices[0].logprobs?.content)
        XCTAssertEqual(tokens.count, response.usage?.completionTokens)
        for token in tokens {
            XCTAssertLessThanOrEqual(token.logprob, 0)
            XCTAssertEqual(token.topLogprobs.count, 5)
            XCTAssertFalse(token.bytes?.isEmpty ?? true)
            XCTAssertEqual(token.topLogprobs.map(\.logprob), token.topLogprobs.map(\.logprob).sorted(by: >))
            XCTAssertTrue(token.topLogprobs.allSatisfy { $0.logprob <= 0 })
            // Greedy: the chosen token is the most likely one.
            XCTAssertEqual(token.topLogprobs.first?.bytes, token.bytes)
            XCTAssertEqual(token.topLogprobs.first?.logprob ?? 1, token.logprob, accuracy: 1e-6)
        }
        let text = String(decoding: tokens.flatMap { $0.bytes ?? [] }, as: UTF8.self)
        XCTAssertEqual(text, response.choices[0].message.content, "the tokens' bytes spell the reply")
    }

    func testLogprobsWithoutAlternativesStillScoreEachToken() async throws {
        let reply = try await HTTP.post(completions, json: request(["logprobs": true], tokens: 3))
        let choice = try XCTUnwrap((reply.json["choices"] as? [[String: Any]])?.first)
        let tokens = try XCTUnwrap((choice["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])
        XCTAssertEqual(tokens.count, 3)
        XCTAssertEqual(tokens.first.map { Set($0.keys) }, ["token", "logprob", "bytes", "top_logprobs"])
        XCTAssertEqual((tokens.first?["top_logprobs"] as? [Any])?.count, 0)
    }

    func testStreamedChunksReassembleToTheUnstreamedReply() async throws {
        let settings: [[String: Any]] = [
            [:],
            ["thinking": "on", "thinking_prefill": "Hmm"],
            ["n": 2, "temperature": 0.8, "seed": 3, "logprobs": true, "top_logprobs": 2],
        ]
        for extra in settings {
            let whole = try await complete(request(extra, tokens: 14))
            // With thinking on, the reply is all reasoning; the stop string then cuts the reasoning.
            let message = whole.choices[0].message
            let stop = Self.stopCandidate(in: message.content?.isEmpty == false ? message.content ?? "" : message.reasoningContent ?? "")
            for stopField in [nil, stop] {
                var body = request(extra, tokens: 14)
                if let stopField { body["stop"] = stopField }
                let expected = try await complete(body)
                body["stream"] = true
                body["stream_options"] = ["include_usage": true]
                let reply = try await HTTP.post(completions, json: body)
                XCTAssertEqual(reply.status, 200)
                let events = HTTP.events(reply.body)
                XCTAssertEqual(events.last, "[DONE]")
                let chunks = try events.dropLast().map { try JSONDecoder().decode(ChatCompletionChunk.self, from: Data($0.utf8)) }
                XCTAssertTrue(chunks.allSatisfy { $0.object == "chat.completion.chunk" && $0.id == chunks[0].id })
                XCTAssertEqual(chunks.last?.usage, expected.usage, "include_usage adds a last chunk with usage")
                for choice in expected.choices {
                    let deltas = chunks.flatMap(\.choices).filter { $0.index == choice.index }
                    XCTAssertEqual(deltas.first?.delta.role, "assistant")
                    XCTAssertEqual(deltas.compactMap(\.delta.content).joined(), choice.message.content, "\(extra) stop \(stopField ?? "-")")
                    let reasoning = deltas.compactMap(\.delta.reasoningContent)
                    XCTAssertEqual(reasoning.isEmpty ? nil : reasoning.joined(), choice.message.reasoningContent)
                    XCTAssertEqual(deltas.compactMap(\.finishReason), [choice.finishReason].compactMap { $0 })
                    XCTAssertEqual(deltas.compactMap(\.logprobs?.content).flatMap { $0 }, choice.logprobs?.content ?? [])
                }
            }
        }
    }

    func testThinkingSwitchesChangeThePromptAndSeparateReasoning() async throws {
        let native = try await complete(request(tokens: 8))
        let on = try await complete(request(["thinking": "on"], tokens: 8))
        let off = try await complete(request(["thinking": "off"], tokens: 8))
        let qwenOn = try await complete(request(["chat_template_kwargs": ["enable_thinking": true]], tokens: 8))
        let qwenOff = try await complete(request(["chat_template_kwargs": ["enable_thinking": false]], tokens: 8))
        let promptTokens = { (r: ChatCompletionResponse) in r.usage?.promptTokens ?? 0 }
        // "<think>\n" opens a block; "<think>\n\n</think>\n\n" is an empty one.
        XCTAssertEqual(promptTokens(on), promptTokens(native) + 8)
        XCTAssertEqual(promptTokens(off), promptTokens(native) + 19)
        XCTAssertEqual(qwenOn.choices.map(\.message), on.choices.map(\.message))
        XCTAssertEqual(qwenOff.choices.map(\.message), off.choices.map(\.message))
        // Thinking on starts inside the think block: without a generated </think>, all is reasoning.
        XCTAssertEqual(on.choices[0].message.content, "")
        XCTAssertFalse(on.choices[0].message.reasoningContent?.isEmpty ?? true)
        XCTAssertNil(off.choices[0].message.reasoningContent)
        XCTAssertFalse(off.choices[0].message.content?.isEmpty ?? true)
    }

    func testAThinkBlockClosedInThePrefillLeavesTheGeneratedTextAsContent() async throws {
        // The tiny model never writes </think> itself; a prefill that closes the block puts the
        // split on the server's path: the prefill is the reasoning, the reply the content.
        let response = try await complete(request(["thinking": "on", "thinking_prefill": "2 + 2 = 4.\n</think>\n\n"], tokens: 6))
        XCTAssertEqual(response.choices[0].message.reasoningContent, "2 + 2 = 4.")
        XCTAssertFalse(response.choices[0].message.content?.isEmpty ?? true)
        XCTAssertEqual(response.usage?.completionTokens, 6)
    }

    func testInvalidRequestsGet400NamingTheField() async throws {
        let user = [["role": "user", "content": "Hi"]]
        let cases: [(body: [String: Any], param: String)] = [
            (["messages": []], "messages"),
            (["model": "tiny"], "messages"),
            (["messages": [["role": "tool", "content": "x"]]], "messages[0].role"),
            (["messages": [["role": "user"]]], "messages[0].content"),
            (["messages": [["role": "user", "content": 5]]], "messages[0].content"),
            (["messages": user, "temperature": -1], "temperature"),
            (["messages": user, "temperature": "hot"], "temperature"),
            (["messages": user, "top_p": 0], "top_p"),
            (["messages": user, "top_k": -2], "top_k"),
            (["messages": user, "min_p": 1], "min_p"),
            (["messages": user, "n": 0], "n"),
            (["messages": user, "n": 1000], "n"),
            (["messages": user, "max_tokens": 0], "max_tokens"),
            (["messages": user, "max_tokens": 100_000], "max_tokens"),
            (["messages": user, "max_completion_tokens": -3], "max_completion_tokens"),
            (["messages": user, "stop": 7], "stop"),
            (["messages": user, "stop": [""]], "stop"),
            (["messages": user, "logprobs": true, "top_logprobs": 21], "top_logprobs"),
            (["messages": user, "top_logprobs": 3], "top_logprobs"),
            (["messages": user, "seed": "abc"], "seed"),
            (["messages": user, "thinking": "maybe"], "thinking"),
            (["messages": user, "thinking_prefill": "Okay"], "thinking_prefill"),
            (["messages": user, "chat_template_kwargs": ["enable_thinking": "yes"]], "chat_template_kwargs.enable_thinking"),
        ]
        for (body, param) in cases {
            let reply = try await HTTP.post(completions, json: body)
            XCTAssertEqual(reply.status, 400, "\(body)")
            let error = try XCTUnwrap(reply.json["error"] as? [String: Any], reply.text)
            XCTAssertEqual(error["param"] as? String, param, "\(body): \(reply.text)")
            XCTAssertEqual(error["type"] as? String, "invalid_request_error")
            XCTAssertTrue((error["message"] as? String)?.contains(param) ?? false, "the message names \(param): \(reply.text)")
        }
        let notJSON = try await HTTP.post(completions, body: Data("{not json".utf8))
        XCTAssertEqual(notJSON.status, 400)
        XCTAssertNotNil((notJSON.json["error"] as? [String: Any])?["message"] as? String)
    }

    /// Issue 16, item 10: these got misleading messages ("got inf", "not valid JSON",
    /// "content has the wrong type").
    func testOutOfRangeNumbersAndBadUTF8GetMessagesThatSayWhatIsWrong() async throws {
        let messages = #""messages": [{"role": "user", "content": "Hi"}]"#
        let cases: [(body: String, param: String?, says: String)] = [
            ("{\(messages), \"temperature\": 1e308}", "temperature", "temperature must be in 0...100"),
            ("{\(messages), \"max_tokens\": 2.5}", "max_tokens", "max_tokens must be a whole number that fits in 64 bits"),
            ("{\(messages), \"max_tokens\": 9223372036854775808}", "max_tokens", "max_tokens must be a whole number that fits in 64 bits"),
        ]
        for (body, param, says) in cases {
            let reply = try await HTTP.post(completions, body: Data(body.utf8))
            XCTAssertEqual(reply.status, 400, body)
            let error = try XCTUnwrap(reply.json["error"] as? [String: Any], reply.text)
            XCTAssertEqual(error["param"] as? String, param, "\(body): \(reply.text)")
            XCTAssertTrue((error["message"] as? String)?.contains(says) ?? false, "\(body): \(reply.text)")
            XCTAssertFalse((error["message"] as? String)?.contains("inf") ?? true, "\(body): \(reply.text)")
        }
        var badUTF8 = Data(#"{"messages": [{"role": "user", "content": "Hi "#.utf8)
        badUTF8.append(contentsOf: [0xC3, 0x28, 0xFF])
        badUTF8.append(contentsOf: Data(#""}]}"#.utf8))
        let reply = try await HTTP.post(completions, body: badUTF8)
        XCTAssertEqual(reply.status, 400)
        let message = (reply.json["error"] as? [String: Any])?["message"] as? String ?? ""
        XCTAssertTrue(message.contains("UTF-8"), reply.text)
    }

    func testContentPartsAndDeveloperMessagesAreAccepted() async throws {
        let plain = try await complete(request(tokens: 4))
        let parts = try await complete(request(["messages": [["role": "user", "content": [["type": "text", "text": "Say "], ["type": "text", "text": "something."]]]]], tokens: 4))
        XCTAssertEqual(parts.choices[0].message, plain.choices[0].message)
        let developer = try await complete(request(["messages": [["role": "developer", "content": "Be brief."], ["role": "user", "content": "Hi"]]], tokens: 4))
        XCTAssertEqual(developer.choices.count, 1)
    }

    func testAnAttachedAdapterIsWhatGetsServed() async throws {
        // A model of its own: attaching changes its layers.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tc-serve-adapter-\(UUID().uuidString).gguf").path
        try TinyServedModel.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let adapted = try ModelLoader.load(path: path)
        let spec = try LoRASpec(rank: 4, alpha: 8, useRSLoRA: false, targetModules: LoRASpec.allTargetModules, layers: nil)
        _ = try LoRAModel(attaching: LoRAWeights.seededRandom(for: adapted.model, spec: spec, seed: 3, magnitude: 3), to: adapted.model)
        let adaptedServer = try await TestHTTPServer.start(
            ChatCompletionServer(model: adapted, modelName: "tiny+adapter", logger: TestHTTPServer.quietLogger))
        otherServers.append(adaptedServer)

        let body = request(["logprobs": true], tokens: 8)
        let base = try await complete(body)
        var adaptedBody = body
        adaptedBody["model"] = "tiny+adapter"  // a name the server does not serve is a 404
        let reply = try await HTTP.post(adaptedServer.baseURL.appendingPathComponent("chat/completions"), json: adaptedBody)
        let withAdapter = try JSONDecoder().decode(ChatCompletionResponse.self, from: reply.body)
        XCTAssertEqual(withAdapter.model, "tiny+adapter")
        XCTAssertNotEqual(withAdapter.choices[0].logprobs?.content?.first?.logprob, base.choices[0].logprobs?.content?.first?.logprob)
    }

    /// Two adjacent characters of `text` (after the first three) that are neither whitespace nor
    /// half a character, so a stop string made of them is found where it was generated.
    static func stopCandidate(in text: String) -> String? {
        let scalars = Array(text.unicodeScalars)
        guard scalars.count > 5 else { return nil }
        for i in 3..<(scalars.count - 1) {
            let pair = scalars[i...(i + 1)]
            if pair.allSatisfy({ $0 != "\u{FFFD}" && !$0.properties.isWhitespace && $0.isASCII }) {
                return String(String.UnicodeScalarView(pair))
            }
        }
        return nil
    }
}
