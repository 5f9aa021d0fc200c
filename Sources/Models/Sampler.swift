import Foundation
import Tensors

/// How the next token is chosen from logits.
///
/// Temperature 0 is greedy (argmax). Otherwise the filters apply in the order of llama.cpp and
/// transformers: top-k, then top-p (nucleus), then min-p relative to the most likely token.
public struct SamplingParameters: Equatable, Sendable {
    public var temperature: Float
    public var topK: Int
    public var topP: Float
    public var minP: Float
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0, seed: UInt64 = 0) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.minP = minP; self.seed = seed
    }

    public static let greedy = SamplingParameters()

    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else { throw ModelError.invalidInput("temperature must be >= 0, got \(temperature)") }
        guard topK >= 0 else { throw ModelError.invalidInput("top-k must be >= 0, got \(topK)") }
        guard topP > 0, topP <= 1 else { throw ModelError.invalidInput("top-p must be in (0, 1], got \(topP)") }
        guard minP >= 0, minP < 1 else { throw ModelError.invalidInput("min-p must be in [0, 1), got \(minP)") }
    }
}

/// A small, fast, seedable generator (xoshiro256**), so sampling is reproducible across runs
/// and platforms.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var z = seed
        func splitmix() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
}

/// Picks tokens from logits according to `SamplingParameters`.
public enum Sampler {
    /// The chosen token id for one row of logits.
    public static func sample(_ logits: UnsafeBufferPointer<Float>, parameters p: SamplingParameters, rng: inout SeededGenerator) -> Int32 {
        let n = logits.count
        var best = 0
        for i in 1..<n where logits[i] > logits[best] { best = i }
        if p.temperature == 0 { return Int32(best) }

        // Candidates sorted by logit, cut by top-k first so the sort stays small when it is set.
        var order = Array(0..<n)
        if p.topK > 0 && p.topK < n {
            order.sort { logits[$0] > logits[$1] }
            order.removeLast(n - p.topK)
        } else {
            order.sort { logits[$0] > logits[$1] }
        }
        let maxLogit = Double(logits[best])
        var probs = order.map { exp((Double(logits[$0]) - maxLogit) / Double(p.temperature)) }
        var total = probs.reduce(0, +)
        var keep = probs.count
        if p.topP < 1 {
            var cumulative = 0.0
            for (i, q) in probs.enumerated() {
                cumulative += q / total
                if cumulative >= Double(p.topP) { keep = i + 1; break }
            }
        }
        if p.minP > 0 {
            let threshold = Double(p.minP) * probs[0]
            keep = min(keep, max(1, probs.prefix(keep).firstIndex { $0 < threshold } ?? keep))
        }
        probs.removeLast(probs.count - keep)
        total = probs.reduce(0, +)
        var u = rng.nextUnit() * total
        for (i, q) in probs.enumerated() {
            u -= q
            if u < 0 { return Int32(order[i]) }
        }
        return Int32(order[keep - 1])
    }
}
