import Autodiff
import Models
import Tensors
import TestSupport
import XCTest

final class ScorerTests: XCTestCase {
    func testLogProbabilitiesMatchTheLogSoftmaxOfTheFullForwardPass() throws {
        let model = try makeTinyModel(.llama)
        let tokens: [Int32] = [2, 9, 14, 3, 3, 27]
        var scorer = Scorer(model: model)
        scorer.rowChunk = 2  // several chunks
        let scores = try scorer.score(tokens, from: 2)
        XCTAssertEqual(scores.map(\.position), [2, 3, 4, 5])
        let layout = try PackedSequences(batch: 1, seqLen: tokens.count)
        let hidden = try model.hiddenStates(Tape(recording: false), tokens: tokens, context: .packed(layout))
        let logits = model.logits(hidden: hidden.value, rows: Array(tokens.indices))
        for s in scores {
            let row = (0..<model.config.vocabSize).map { Double(logits[s.position - 1, $0]) }
            let lse = log(row.map(exp).reduce(0, +))
            XCTAssertEqual(Double(s.logProbability), row[Int(s.id)] - lse, accuracy: 1e-4)
            XCTAssertEqual(s.rank, row.filter { $0 > row[Int(s.id)] }.count)
        }
    }

    func testScoringFromPositionZeroIsRejected() throws {
        XCTAssertThrowsError(try Scorer(model: try makeTinyModel()).score([1, 2], from: 0))
    }
}
