import Models
import XCTest

final class SamplerTests: XCTestCase {
    let logits: [Float] = [0.1, 2.0, 1.9, -1, 0.5]

    func sample(_ p: SamplingParameters, times: Int = 2000) -> [Int32: Int] {
        var rng = SeededGenerator(seed: p.seed)
        var counts: [Int32: Int] = [:]
        logits.withUnsafeBufferPointer { l in
            for _ in 0..<times { counts[Sampler.sample(l, parameters: p, rng: &rng), default: 0] += 1 }
        }
        return counts
    }

    func testTemperatureZeroIsArgmax() {
        XCTAssertEqual(sample(.greedy, times: 5), [1: 5])
    }

    func testTopKOfOneIsArgmax() {
        XCTAssertEqual(sample(SamplingParameters(temperature: 1.5, topK: 1, seed: 1)).keys.sorted(), [1])
    }

    func testTopKLimitsTheCandidates() {
        XCTAssertEqual(sample(SamplingParameters(temperature: 1, topK: 2, seed: 1)).keys.sorted(), [1, 2])
    }

    func testTopPKeepsTheSmallestSetReachingP() {
        // softmax: p(1) ~ 0.41, p(2) ~ 0.37, so top-p 0.5 keeps tokens 1 and 2 only
        XCTAssertEqual(sample(SamplingParameters(temperature: 1, topP: 0.5, seed: 2)).keys.sorted(), [1, 2])
    }

    func testMinPDropsTokensFarBelowTheBest() {
        // p(4)/p(1) = e^-1.5 ~ 0.22, p(0)/p(1) ~ 0.15: min-p 0.2 keeps 1, 2 and 4
        XCTAssertEqual(sample(SamplingParameters(temperature: 1, minP: 0.2, seed: 3)).keys.sorted(), [1, 2, 4])
    }

    func testSamplingFrequenciesFollowTheSoftmax() {
        let counts = sample(SamplingParameters(temperature: 1, seed: 4), times: 20000)
        let z = logits.map { exp(Double($0)) }.reduce(0, +)
        for (i, l) in logits.enumerated() {
            XCTAssertEqual(Double(counts[Int32(i)] ?? 0) / 20000, exp(Double(l)) / z, accuracy: 0.015)
        }
    }

    func testSameSeedSameSequence() {
        XCTAssertEqual(sample(SamplingParameters(temperature: 1, seed: 9), times: 50), sample(SamplingParameters(temperature: 1, seed: 9), times: 50))
    }

    /// The tokens the filters keep, by their definition: every token sorted by logit, top-k,
    /// then the nucleus over the remaining mass, then min-p; with their unnormalised weights.
    func referenceKept(_ logits: [Float], _ p: SamplingParameters) -> (order: [Int], probs: [Double]) {
        var order = Array(logits.indices).sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if p.topK > 0 && p.topK < order.count { order.removeLast(order.count - p.topK) }
        let best = Double(logits[order[0]])
        let probs = order.map { exp((Double(logits[$0]) - best) / Double(p.temperature)) }
        var keep = probs.count
        if p.topP < 1 {
            let total = probs.reduce(0, +)
            var cumulative = 0.0
            for (i, q) in probs.enumerated() { cumulative += q / total; if cumulative >= Double(p.topP) { keep = i + 1; break } }
        }
        if p.minP > 0 { keep = min(keep, max(1, probs.prefix(keep).firstIndex { $0 < Double(p.minP) * probs[0] } ?? keep)) }
        return (Array(order.prefix(keep)), Array(probs.prefix(keep)))
    }

    func testFiltersOnALargeVocabularyPickWhatTheirDefinitionPicks() {
        var gen = SeededGenerator(seed: 77)
        let vocab: [Float] = (0..<4000).map { _ in Float(gen.nextUnit() * 12 - 6) } + [9, 9, 8.5]  // ties at the top
        for p in [SamplingParameters(temperature: 1, topP: 0.9, seed: 5), SamplingParameters(temperature: 0.7, topK: 40, topP: 0.95, seed: 6),
                  SamplingParameters(temperature: 1.3, minP: 0.05, seed: 7), SamplingParameters(temperature: 1, topK: 3000, seed: 8)] {
            let kept = referenceKept(vocab, p), total = kept.probs.reduce(0, +)
            var fast = SeededGenerator(seed: p.seed), reference = SeededGenerator(seed: p.seed)
            for _ in 0..<200 {
                let picked = vocab.withUnsafeBufferPointer { Sampler.sample($0, parameters: p, rng: &fast) }
                var u = reference.nextUnit() * total, expected = Int32(kept.order[kept.order.count - 1])
                for (i, q) in kept.probs.enumerated() { u -= q; if u < 0 { expected = Int32(kept.order[i]); break } }
                XCTAssertEqual(picked, expected, "\(p)")
            }
        }
    }

    func testTokensWithMinusInfinityLogitsAreNeverPicked() {
        let masked: [Float] = [-.infinity, 1, -.infinity, 0.5, -.infinity]
        var rng = SeededGenerator(seed: 1)
        for p in [SamplingParameters(temperature: 1, seed: 1), SamplingParameters(temperature: 1, topP: 0.99, seed: 1)] {
            let picks = masked.withUnsafeBufferPointer { l in Set((0..<200).map { _ in Sampler.sample(l, parameters: p, rng: &rng) }) }
            XCTAssertEqual(picks, [1, 3])
        }
    }

    func testInvalidParametersAreRejected() {
        XCTAssertThrowsError(try SamplingParameters(temperature: -1).validate())
        XCTAssertThrowsError(try SamplingParameters(topP: 0).validate())
        XCTAssertThrowsError(try SamplingParameters(minP: 1).validate())
    }
}
