import Evaluation
import Foundation
import LoRA
import Models
import XCTest

/// POST /v1/completions and adapters chosen per request by `model` (issue 17, item 9).
final class ServerCompletionsAndAdaptersTests: XCTestCase {
    var server: TestHTTPServer!
    var fixed: TestHTTPServer!
    var path = ""

    override func setUp() async throws {
        // A model of its own: adapters are attached to its layers.
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tc-serve-lora-\(UUID().uuidString).gguf").path
        try TinyServedModel.write(to: path)
        let model = try ModelLoader.load(path: path)
        let spec = try LoRASpec(rank: 4, alpha: 8, useRSLoRA: false, targetModules: LoRASpec.allTargetModules, layers: nil)
        let weights = try LoRAWeights.seededRandom(for: model.model, spec: spec, seed: 3, magnitude: 3)
        server = try await TestHTTPServer.start(try ChatCompletionServer(
            model: model, modelName: "tiny", adapters: ["medical": weights], logger: TestHTTPServer.quietLogger))
        // The same adapter attached for good, as `serve --adapter` does: the reference.
        let other = try ModelLoader.load(path: path)
        _ = try LoRAModel(attaching: weights, to: other.model)
        fixed = try await TestHTTPServer.start(try ChatCompletionServer(model: other, modelName: "tiny+medical", logger: TestHTTPServer.quietLogger))
    }

    override func tearDown() async throws {
        await server?.stop()
        await fixed?.stop()
        try? FileManager.default.removeItem(atPath: path)
    }

    private func chat(_ url: URL, model: String?) async throws -> [Double] {
        var body: [String: Any] = ["messages": [["role": "user", "content": "Hi"]], "temperature": 0, "max_tokens": 6, "logprobs": true]
        if let model { body["model"] = model }
        let reply = try await HTTP.post(url.appendingPathComponent("chat/completions"), json: body)
        XCTAssertEqual(reply.status, 200, reply.text)
        let response = try JSONDecoder().decode(ChatCompletionResponse.self, from: reply.body)
        return response.choices[0].logprobs?.content?.map(\.logprob) ?? []
    }

    func testModelsListsTheBaseAndEveryAdapter() async throws {
        let reply = try await HTTP.get(server.baseURL.appendingPathComponent("models"))
        XCTAssertEqual((reply.json["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }, ["tiny", "medical"])
    }

    func testARequestNamingAnAdapterIsAnsweredWithItAndTheNextOneWithoutIt() async throws {
        let base = try await chat(server.baseURL, model: "tiny")
        let adapted = try await chat(server.baseURL, model: "medical")
        let reference = try await chat(fixed.baseURL, model: nil)
        XCTAssertEqual(adapted, reference, "same as the adapter attached for good")
        XCTAssertNotEqual(adapted, base)
        let baseAgain = try await chat(server.baseURL, model: nil)
        XCTAssertEqual(baseAgain, base, "the adapter was detached after its request")
    }

    /// Issue 29, item 8: chat responses named the base model when an adapter answered.
    func testAChatResponseNamesTheAdapterThatAnsweredPlainAndStreamed() async throws {
        let url = server.baseURL.appendingPathComponent("chat/completions")
        let plain = try await HTTP.post(url, json: ["model": "medical", "messages": [["role": "user", "content": "Hi"]], "max_tokens": 2])
        XCTAssertEqual(plain.json["model"] as? String, "medical", plain.text)
        let streamed = try await HTTP.post(url, json: ["model": "medical", "stream": true, "messages": [["role": "user", "content": "Hi"]], "max_tokens": 2])
        let chunks = streamed.text.split(separator: "\n").filter { $0.hasPrefix("data: {") }
        XCTAssertFalse(chunks.isEmpty, streamed.text)
        for chunk in chunks {
            let object = try JSONSerialization.jsonObject(with: Data(chunk.dropFirst(6).utf8)) as? [String: Any]
            XCTAssertEqual(object?["model"] as? String, "medical", String(chunk))
        }
        let base = try await HTTP.post(url, json: ["messages": [["role": "user", "content": "Hi"]], "max_tokens": 2])
        XCTAssertEqual(base.json["model"] as? String, "tiny", base.text)
    }

    func testOneModelCanBeRetrievedByItsIdAndAnUnknownOneIs404() async throws {
        let reply = try await HTTP.get(server.baseURL.appendingPathComponent("models/medical"))
        XCTAssertEqual(reply.status, 200, reply.text)
        XCTAssertEqual(reply.json["id"] as? String, "medical")
        XCTAssertEqual(reply.json["object"] as? String, "model")
        let nested = try await HTTP.get(server.baseURL.appendingPathComponent("models/org/legal"))
        XCTAssertEqual(nested.status, 404, "an id with a slash reaches the model lookup: \(nested.text)")
        XCTAssertTrue(nested.text.contains("'org/legal' is not served here"), nested.text)
        let unknown = try await HTTP.get(server.baseURL.appendingPathComponent("models/legal"))
        XCTAssertEqual(unknown.status, 404, unknown.text)
        XCTAssertEqual((unknown.json["error"] as? [String: Any])?["code"] as? String, "model_not_found")
    }

    func testALoneSurrogateEscapeIsRefusedSayingSo() async throws {
        let body = Data(#"{"messages": [{"role": "user", "content": "x\ud800y"}]}"#.utf8)
        let reply = try await HTTP.post(server.baseURL.appendingPathComponent("chat/completions"), body: body)
        XCTAssertEqual(reply.status, 400, reply.text)
        let message = (reply.json["error"] as? [String: Any])?["message"] as? String ?? ""
        XCTAssertTrue(message.contains(#"\ud800"#) && message.contains("surrogate pair"), message)
        let paired = Data(#"{"messages": [{"role": "user", "content": "\ud83d\ude00"}], "max_tokens": 1}"#.utf8)
        let ok = try await HTTP.post(server.baseURL.appendingPathComponent("chat/completions"), body: paired)
        XCTAssertEqual(ok.status, 200, ok.text)
    }

    func testAnUnknownModelIs404NamingTheServedOnes() async throws {
        let reply = try await HTTP.post(server.baseURL.appendingPathComponent("chat/completions"),
                                        json: ["model": "legal", "messages": [["role": "user", "content": "Hi"]]])
        XCTAssertEqual(reply.status, 404)
        let error = try XCTUnwrap(reply.json["error"] as? [String: Any])
        XCTAssertEqual(error["code"] as? String, "model_not_found")
        XCTAssertTrue((error["message"] as? String)?.contains("'tiny', 'medical'") ?? false, reply.text)
    }

    func testATextCompletionContinuesTheRawPrompt() async throws {
        let reply = try await HTTP.post(server.baseURL.appendingPathComponent("completions"),
                                        json: ["model": "tiny", "prompt": "Once upon a time", "max_tokens": 5, "temperature": 0, "logprobs": 2])
        XCTAssertEqual(reply.status, 200, reply.text)
        let response = try JSONDecoder().decode(CompletionResponse.self, from: reply.body)
        XCTAssertEqual(response.object, "text_completion")
        XCTAssertTrue(response.id.hasPrefix("cmpl-"))
        let choice = try XCTUnwrap(response.choices.first)
        XCTAssertEqual(choice.finishReason, "length")
        let model = try TinyServedModel.loaded.get()
        let tokenizer = try model.requireTokenizer()
        XCTAssertEqual(response.usage?.promptTokens, tokenizer.encode("Once upon a time").count, "no chat template around the prompt")
        let logprobs = try XCTUnwrap(choice.logprobs)
        XCTAssertEqual(logprobs.tokens.count, 5)
        XCTAssertEqual(logprobs.tokens.joined(), choice.text)
        XCTAssertEqual(logprobs.textOffset, logprobs.tokens.indices.map { logprobs.tokens[..<$0].joined().count })
        XCTAssertTrue(logprobs.topLogprobs.allSatisfy { $0.count <= 2 && !$0.isEmpty })
    }

    func testSeveralPromptsAreCompletedInOrderAndStreamingGivesTheSameText() async throws {
        let url = server.baseURL.appendingPathComponent("completions")
        let body: [String: Any] = ["model": "medical", "prompt": ["The sky is", "Two plus two"], "n": 2, "max_tokens": 6, "temperature": 1, "seed": 4]
        let reply = try await HTTP.post(url, json: body)
        XCTAssertEqual(reply.status, 200, reply.text)
        let response = try JSONDecoder().decode(CompletionResponse.self, from: reply.body)
        XCTAssertEqual(response.choices.map(\.index), [0, 1, 2, 3], "prompt 0's two choices, then prompt 1's")
        XCTAssertEqual(response.model, "medical")

        var streamedBody = body
        streamedBody["stream"] = true
        let streamed = try await HTTP.post(url, json: streamedBody)
        var texts = Array(repeating: "", count: 4)
        for line in streamed.text.split(separator: "\n") where line.hasPrefix("data: {") {
            let chunk = try JSONDecoder().decode(CompletionResponse.self, from: Data(line.dropFirst(6).utf8))
            for c in chunk.choices { texts[c.index] += c.text }
        }
        XCTAssertTrue(streamed.text.hasSuffix("data: [DONE]\n\n"))
        XCTAssertEqual(texts, response.choices.map(\.text))
    }

    func testCompletionFieldsItDoesNotImplementAreRefused() async throws {
        let url = server.baseURL.appendingPathComponent("completions")
        for (field, value) in [("echo", true), ("suffix", "end"), ("best_of", 3), ("logprobs", 9)] as [(String, Any)] {
            let reply = try await HTTP.post(url, json: ["prompt": "Hi", field: value])
            XCTAssertEqual(reply.status, 400, "\(field): \(reply.text)")
            XCTAssertEqual((reply.json["error"] as? [String: Any])?["param"] as? String, field, reply.text)
        }
    }
}
