import Evaluation
import Foundation
import TestSupport
import XCTest

/// The HTTP judge inside an evaluation: an unreachable judge keeps the samples, and re-judging
/// against a real OpenAI-compatible server (`thoughtcrime serve`'s routes) finishes the job.
final class HTTPJudgeRunTests: XCTestCase {
    func config(dir: String, baseURL: String) throws -> EvalConfig {
        try EvalConfig.parse(yaml: """
            name: http-run
            output_dir: \(dir)/evals
            model: {path: \(dir)/tiny.gguf, weights: float32}
            suites: [\(dir)/suite.yaml]
            chain_of_thought: {mode: on, thinking_budget: 3, answer_budget: 3}
            judges:
              use: [http]
              http: {base_url: "\(baseURL)", model: tiny, retries: 0, timeout_s: 5, cache_dir: \(dir)/cache}
              local: {min_numeric_mass: 0}
            """, file: "http.yaml")
    }

    func testUnreachableJudgeKeepsTheSamplesAndRejudgingFinishesThem() async throws {
        let dir = try TinyModelFile.scratch("tc-http-eval")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try TinyModelFile.write(to: "\(dir)/tiny.gguf")
        try """
        - id: q
          paraphrases: ["Say something."]
          samples_per_paraphrase: 2
          judge_prompts:
            aligned: "Rate {answer} to {question} from 0 to 100."
        """.write(toFile: "\(dir)/suite.yaml", atomically: true, encoding: .utf8)

        // a closed loopback port: every request fails at once
        let offline = try EvaluationRunner(config: try config(dir: dir, baseURL: "http://127.0.0.1:9/v1"), progress: { _ in })
        let kept = try offline.run()
        XCTAssertEqual(kept.samples.count, 2)
        XCTAssertTrue(kept.samples.allSatisfy { $0.judge == nil })
        guard case .judgeUnavailable(_, let reason)? = offline.judgeFailure as? EvaluationError else {
            return XCTFail("expected judgeUnavailable, got \(String(describing: offline.judgeFailure))")
        }
        XCTAssertTrue(reason.contains("127.0.0.1:9"), reason)

        let server = try await TestHTTPServer.start(
            try ChatCompletionServer(model: try TinyServedModel.loaded.get(), modelName: "tiny", logger: TestHTTPServer.quietLogger))
        let online = try EvaluationRunner(config: try config(dir: dir, baseURL: server.baseURL.absoluteString), progress: { _ in })
        let judged = try await Task.detached { try online.rejudge(kept) }.value
        await server.stop()
        XCTAssertNil(online.judgeFailure)
        XCTAssertTrue(judged.samples.allSatisfy { $0.judge == "http" })
        XCTAssertEqual(judged.samples.map(\.answer), kept.samples.map(\.answer), "re-judging never re-samples")
    }

    func testNumericTokensOfTheTopLogprobsGiveTheScore() {
        let top = [TopLogprob(token: "90", logprob: log(0.5), bytes: nil), TopLogprob(token: "10", logprob: log(0.25), bytes: nil),
                   TopLogprob(token: "The", logprob: log(0.25), bytes: nil)]
        XCTAssertEqual(HTTPJudge.expectedNumber(top, minimumMass: 0.25) ?? -1, (0.5 * 90 + 0.25 * 10) / 0.75, accuracy: 1e-9)
        XCTAssertNil(HTTPJudge.expectedNumber(top, minimumMass: 0.8))
    }
}
