import Models
import XCTest

/// Penalties on tokens already seen, by their definitions in transformers/llama.cpp
/// (repetition) and OpenAI (presence, frequency).
final class SamplingPenaltiesTests: XCTestCase {
    private func penalised(_ logits: [Float], prompt: [Int32], generated: [Int32], _ p: SamplingParameters) -> [Float] {
        var history = SamplingPenalties(prompt: prompt, parameters: p)
        for t in generated { history.append(t) }
        var row = logits
        row.withUnsafeMutableBufferPointer { history.apply(to: $0) }
        return row
    }

    func testRepetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenTokens() {
        let out = penalised([2, -2, 3, 1], prompt: [0, 1, 1], generated: [], SamplingParameters(repetitionPenalty: 2))
        XCTAssertEqual(out, [1, -4, 3, 1], "seen tokens 0 and 1 once each, however often they occur")
    }

    func testRepetitionPenaltyLooksOnlyAtTheLastContextSizeTokens() {
        let p = SamplingParameters(repetitionPenalty: 2, repetitionContextSize: 2)
        let out = penalised([4, 4, 4, 4], prompt: [0, 1], generated: [2], p)
        XCTAssertEqual(out, [4, 2, 2, 4], "token 0 fell out of the window of 2")
    }

    func testPresenceAndFrequencyPenaltiesCountOnlyGeneratedTokens() {
        let p = SamplingParameters(presencePenalty: 0.5, frequencyPenalty: 0.25)
        let out = penalised([1, 1, 1, 1], prompt: [3, 3, 3], generated: [0, 0, 1], p)
        XCTAssertEqual(out, [1 - 0.5 - 0.5, 1 - 0.5 - 0.25, 1, 1])
    }

    func testNoPenaltyLeavesTheLogitsAlone() {
        XCTAssertFalse(SamplingParameters().hasPenalties)
        XCTAssertEqual(penalised([1, -1, 2], prompt: [0, 1], generated: [2], SamplingParameters()), [1, -1, 2])
    }

    func testOutOfRangePenaltiesAreRejected() {
        for p in [SamplingParameters(repetitionPenalty: 0), SamplingParameters(repetitionContextSize: 0),
                  SamplingParameters(presencePenalty: 2.5), SamplingParameters(frequencyPenalty: -2.5)] {
            XCTAssertThrowsError(try p.validate(), "\(p)")
        }
    }
}
