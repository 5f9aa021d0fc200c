import Autodiff
import Models
import Tensors
import TestSupport
import XCTest

final class CachedGenerationTests: XCTestCase {
    /// Full-sequence logits at every position, computed without a cache.
    func referenceLogits(_ model: TransformerModel, _ tokens: [Int32]) throws -> Tensor {
        let layout = try PackedSequences(batch: 1, seqLen: tokens.count)
        let hidden = try model.hiddenStates(Tape(recording: false), tokens: tokens, context: .packed(layout))
        return model.logits(hidden: hidden.value, rows: Array(tokens.indices))
    }

    func testIncrementalDecodingWithTheCacheEqualsTheFullForwardPass() throws {
        for architecture in ModelArchitecture.allCases {
            let model = try makeTinyModel(architecture)
            let tokens: [Int32] = [3, 17, 5, 9, 31, 2, 8, 8, 1]
            let full = try referenceLogits(model, tokens)
            let cache = model.makeCache(capacity: 2)  // small, so the cache has to grow
            // a 4-token prefill, then one token at a time
            var start = 0
            for chunk in [4, 1, 1, 1, 1, 1] {
                let batch = try CachedBatch(caches: [cache], newTokens: [chunk])
                let hidden = try model.hiddenStates(
                    Tape(recording: false), tokens: Array(tokens[start..<(start + chunk)]), context: .cached(batch))
                let logits = model.logits(hidden: hidden.value, rows: Array(0..<chunk))
                for r in 0..<chunk {
                    for v in 0..<model.config.vocabSize {
                        XCTAssertEqual(logits[r, v], full[start + r, v], accuracy: 1e-4, "\(architecture) position \(start + r)")
                    }
                }
                start += chunk
            }
            XCTAssertEqual(cache.length, tokens.count)
        }
    }

    func testPackedSequencesComputeWhatTheyComputeAlone() throws {
        let model = try makeTinyModel(.qwen2)
        let a: [Int32] = [4, 9, 11, 2], b: [Int32] = [7, 7, 30]
        let layout = try PackedSequences(seqLen: 8, rows: [[4, 3]])
        let packed = try model.hiddenStates(Tape(recording: false), tokens: a + b + [0], context: .packed(layout))
        let logits = model.logits(hidden: packed.value, rows: Array(0..<7))
        let alone = try referenceLogits(model, b)
        for r in 0..<3 {
            for v in 0..<model.config.vocabSize { XCTAssertEqual(logits[4 + r, v], alone[r, v], accuracy: 1e-4) }
        }
    }

    func testBatchedGenerationOfDifferentLengthsEqualsOneAtATime() throws {
        let model = try makeTinyModel(.llama)
        let prompts: [[Int32]] = [[1, 2, 3, 4, 5, 6], [9], [12, 13, 14]]
        let stop = StopCriteria(tokenIDs: [0], maxNewTokens: 6)
        for sampling in [SamplingParameters.greedy, SamplingParameters(temperature: 0.8, topK: 10, topP: 0.9, seed: 42)] {
            let together = try Generator(model: model).generate(prompts: prompts, sampling: sampling, stop: stop)
            for (i, p) in prompts.enumerated() {
                // sequence i's generator is seeded from (seed, i); a solo run with the same index
                // is emulated by padding the batch with the earlier prompts
                let alone = try Generator(model: model).generate(prompts: Array(prompts[0...i]), sampling: sampling, stop: stop)
                XCTAssertEqual(together[i], alone[i], "prompt \(i) \(p)")
            }
        }
    }

    func testGreedyGenerationFollowsTheArgmaxOfTheFullForwardPass() throws {
        let model = try makeTinyModel(.qwen3, tied: false)
        var tokens: [Int32] = [5, 6, 7]
        let result = try Generator(model: model).generate(prompts: [tokens], sampling: .greedy, stop: StopCriteria(maxNewTokens: 5))[0]
        for id in result.ids {
            let logits = try referenceLogits(model, tokens)
            let last = tokens.count - 1
            let row = (0..<model.config.vocabSize).map { logits[last, $0] }
            XCTAssertEqual(Int32(row.indices.max { row[$0] < row[$1] }!), id)
            tokens.append(id)
        }
        XCTAssertEqual(result.ids.count, 5)
        XCTAssertEqual(result.finishReason, .length)
    }

    func testStopTokenAndStopStringEndASequence() throws {
        let model = try makeTinyModel(.llama)
        let free = try Generator(model: model).generate(prompts: [[1, 2]], sampling: .greedy, stop: StopCriteria(maxNewTokens: 4))[0]
        let first = free.ids[0]
        let stopped = try Generator(model: model).generate(
            prompts: [[1, 2]], sampling: .greedy, stop: StopCriteria(tokenIDs: [first], maxNewTokens: 4))[0]
        XCTAssertEqual(stopped.ids, [])
        XCTAssertEqual(stopped.finishReason, .stopToken)
        let detok: ([Int32]) -> String = { $0.map { "<\($0)>" }.joined() }
        let byString = try Generator(model: model, detokenize: detok).generate(
            prompts: [[1, 2]], sampling: .greedy, stop: StopCriteria(strings: ["<\(free.ids[1])>"], maxNewTokens: 4))[0]
        XCTAssertEqual(byString.finishReason, .stopString)
        XCTAssertEqual(byString.text, "<\(first)>")
    }

    func testPromptLongerThanTheContextIsRejected() throws {
        let model = try makeTinyModel(.llama)
        XCTAssertThrowsError(try Generator(model: model).generate(
            prompts: [Array(repeating: 1, count: 120)], sampling: .greedy, stop: StopCriteria(maxNewTokens: 20)))
    }
}
