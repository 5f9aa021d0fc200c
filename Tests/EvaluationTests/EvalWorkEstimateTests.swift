import Foundation
import Models
import XCTest

@testable import Evaluation

/// Every sample of a prompt is one batch, so an eval's sample count sets its memory; the run is
/// refused up front, with the figures, when the batch cannot fit (issue 29, item 2).
final class EvalWorkEstimateTests: XCTestCase {
    /// SmolLM2-135M's shape: 30 layers, 3 KV heads of 64.
    let smolLM2 = TransformerConfig(architecture: .llama, vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536,
                                    layerCount: 30, headCount: 9, kvHeadCount: 3)

    func testACachesBytesFollowItsDoublingCapacity() {
        // 292 positions grow the cache to 512 rows of 192 keys and 192 values in each of 30 layers.
        XCTAssertEqual(EvalWorkEstimate.cacheBytes(config: smolLM2, tokens: 292), 30 * 2 * 192 * 512 * 4)
        XCTAssertEqual(EvalWorkEstimate.cacheBytes(config: smolLM2, tokens: 10), 30 * 2 * 192 * 64 * 4)
    }

    func testABatchNeedsItsCachesAndTwoRowsOfLogitsPerSequence() {
        let bytes = EvalWorkEstimate.batchBytes(config: smolLM2, sequences: 1000, promptTokens: 100, thinkingBudget: 128, answerBudget: 64)
        XCTAssertEqual(bytes, 1000 * (30 * 2 * 192 * 512 * 4 + 2 * 49152 * 4))
    }

    func testAHugeBatchDoesNotOverflow() {
        XCTAssertEqual(EvalWorkEstimate.batchBytes(config: smolLM2, sequences: Int.max / 2, promptTokens: 100, thinkingBudget: 128, answerBudget: 64), Int.max)
    }

    func testABatchOverTheAvailableMemoryIsRefusedWithTheFigures() {
        let estimate = EvalWorkEstimate(samples: 2000, likelihoodComparisons: 0, generatedTokensAtMost: 384_000, largestBatch: 1000,
                                        largestBatchBytes: 24_000 << 20, availableBytes: 4_000 << 20, availableSource: "physical memory")
        XCTAssertThrowsError(try estimate.requireFits()) {
            XCTAssertEqual("\($0)", "sampling 1000 answers of one prompt at once needs about 24000 MB (their KV caches and logits), more than the 4000 MB physical memory leaves; lower sampling.samples_per_paraphrase (or the suite's samples_per_paraphrase) or the budgets. In all: 2000 samples (at most 384000 generated tokens), 0 likelihood comparisons; largest sampling batch 1000 sequences, about 24000 MB")
        }
    }

    func testABatchWithinTheAvailableMemoryIsAccepted() throws {
        let estimate = EvalWorkEstimate(samples: 8, likelihoodComparisons: 2, generatedTokensAtMost: 1536, largestBatch: 4,
                                        largestBatchBytes: 100 << 20, availableBytes: 4_000 << 20, availableSource: "physical memory")
        XCTAssertNoThrow(try estimate.requireFits())
    }

    func testASuiteQuestionWithTooManySamplesIsRefusedNamingIt() {
        let yaml = "- id: q1\n  paraphrases: [\"Hi?\"]\n  samples_per_paraphrase: 5000\n"
        XCTAssertThrowsError(try QuestionSuite(yaml: yaml, path: "s.yaml")) {
            XCTAssertTrue("\($0)".contains("question 'q1': samples_per_paraphrase must be an integer in 1...1000"), "\($0)")
        }
    }
}
