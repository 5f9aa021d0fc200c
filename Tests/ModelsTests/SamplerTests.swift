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

    func testInvalidParametersAreRejected() {
        XCTAssertThrowsError(try SamplingParameters(temperature: -1).validate())
        XCTAssertThrowsError(try SamplingParameters(topP: 0).validate())
        XCTAssertThrowsError(try SamplingParameters(minP: 1).validate())
    }
}
