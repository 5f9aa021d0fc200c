import Models
import TestSupport
import XCTest

/// `Generator`'s optional per-token log-probabilities: what an OpenAI-compatible server reports
/// as `logprobs` / `top_logprobs`.
final class GenerationLogProbabilityTests: XCTestCase {
    func testChosenTokenLogProbabilitiesEqualTheScorersForTheSameText() throws {
        let model = try makeTinyModel(.llama)
        let prompt: [Int32] = [3, 9, 4]
        let sampling = SamplingParameters(temperature: 0.9, topK: 12, seed: 5)
        let result = try Generator(model: model).generate(
            prompts: [prompt], sampling: sampling, stop: StopCriteria(maxNewTokens: 6), topLogProbabilities: 3, onStep: nil)[0]
        XCTAssertEqual(result.logProbabilities.count, result.ids.count)
        let scores = try Scorer(model: model).score(prompt + result.ids, from: prompt.count)
        for (generated, score) in zip(result.logProbabilities, scores) {
            XCTAssertEqual(generated.chosen.id, score.id)
            XCTAssertEqual(generated.chosen.logProbability, score.logProbability, accuracy: 1e-4)
        }
    }

    func testTopAlternativesAreSortedNonPositiveAndIncludeTheGreedyChoice() throws {
        let model = try makeTinyModel(.qwen2)
        let result = try Generator(model: model).generate(
            prompts: [[1, 2, 3]], sampling: .greedy, stop: StopCriteria(maxNewTokens: 5), topLogProbabilities: 4, onStep: nil)[0]
        for step in result.logProbabilities {
            XCTAssertEqual(step.top.count, 4)
            XCTAssertEqual(step.top[0], step.chosen, "greedy picks the most likely token")
            XCTAssertEqual(step.top.map(\.logProbability), step.top.map(\.logProbability).sorted(by: >))
            XCTAssertTrue(step.top.allSatisfy { $0.logProbability <= 0 })
        }
    }

    func testTheWholeVocabularyAsAlternativesSumsToOne() throws {
        let model = try makeTinyModel(.llama)
        let vocab = model.config.vocabSize
        let result = try Generator(model: model).generate(
            prompts: [[7]], sampling: .greedy, stop: StopCriteria(maxNewTokens: 2), topLogProbabilities: vocab + 10, onStep: nil)[0]
        let step = try XCTUnwrap(result.logProbabilities.first)
        XCTAssertEqual(step.top.count, vocab, "capped at the vocabulary")
        XCTAssertEqual(step.top.reduce(0.0) { $0 + exp(Double($1.logProbability)) }, 1, accuracy: 1e-4)
    }

    func testRequestingLogProbabilitiesDoesNotChangeWhatIsGenerated() throws {
        let model = try makeTinyModel(.llama)
        let sampling = SamplingParameters(temperature: 1, topP: 0.9, seed: 11)
        let stop = StopCriteria(maxNewTokens: 6)
        let plain = try Generator(model: model).generate(prompts: [[4, 5], [6]], sampling: sampling, stop: stop)
        var streamed: [[Int32]] = [[], []]
        let withLogProbabilities = try Generator(model: model).generate(
            prompts: [[4, 5], [6]], sampling: sampling, stop: stop, topLogProbabilities: 0
        ) { token in
            streamed[token.sequence].append(token.id)
            XCTAssertNotNil(token.logProbabilities)
        }
        XCTAssertEqual(plain.map(\.ids), withLogProbabilities.map(\.ids))
        XCTAssertEqual(streamed, plain.map(\.ids))
        XCTAssertTrue(plain.allSatisfy { $0.logProbabilities.isEmpty })
        XCTAssertTrue(withLogProbabilities.allSatisfy { $0.logProbabilities.allSatisfy(\.top.isEmpty) })
    }

    func testNegativeTopCountIsRejected() throws {
        let model = try makeTinyModel(.llama)
        XCTAssertThrowsError(try Generator(model: model).generate(
            prompts: [[1]], sampling: .greedy, stop: StopCriteria(maxNewTokens: 1), topLogProbabilities: -1, onStep: nil))
    }
}
