import Foundation
import Tensors

/// How the next token is chosen from logits.
///
/// Temperature 0 is greedy (argmax). Otherwise the filters apply in the order of llama.cpp and
/// transformers: top-k, then top-p (nucleus), then min-p relative to the most likely token.
/// Penalties on tokens already seen (`SamplingPenalties`) change the logits first, greedy or not.
public struct SamplingParameters: Equatable, Sendable {
    public var temperature: Float
    public var topK: Int
    public var topP: Float
    public var minP: Float
    public var seed: UInt64
    /// transformers' and llama.cpp's repetition penalty: a seen token's logit is divided by it
    /// when positive and multiplied when negative. 1 = off.
    public var repetitionPenalty: Float
    /// How many of the latest tokens (prompt included, as llama.cpp's `repeat_last_n`) the
    /// repetition penalty looks at.
    public var repetitionContextSize: Int
    /// OpenAI's penalties over the generated tokens: subtract `presencePenalty` from every
    /// generated token's logit and `frequencyPenalty` times its count. 0 = off; -2...2.
    public var presencePenalty: Float
    public var frequencyPenalty: Float

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0, seed: UInt64 = 0,
                repetitionPenalty: Float = 1, repetitionContextSize: Int = 64, presencePenalty: Float = 0, frequencyPenalty: Float = 0) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.minP = minP; self.seed = seed
        self.repetitionPenalty = repetitionPenalty; self.repetitionContextSize = repetitionContextSize
        self.presencePenalty = presencePenalty; self.frequencyPenalty = frequencyPenalty
    }

    /// Whether any penalty changes the logits.
    public var hasPenalties: Bool { repetitionPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0 }

    public static let greedy = SamplingParameters()

    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else { throw ModelError.invalidInput("temperature must be >= 0, got \(temperature)") }
        guard topK >= 0 else { throw ModelError.invalidInput("top-k must be >= 0, got \(topK)") }
        guard topP > 0, topP <= 1 else { throw ModelError.invalidInput("top-p must be in (0, 1], got \(topP)") }
        guard minP >= 0, minP < 1 else { throw ModelError.invalidInput("min-p must be in [0, 1), got \(minP)") }
        guard repetitionPenalty > 0, repetitionPenalty <= 10 else {
            throw ModelError.invalidInput("repetition penalty must be in (0, 10] (1 = off), got \(repetitionPenalty)")
        }
        guard repetitionContextSize >= 1 else {
            throw ModelError.invalidInput("repetition context size must be >= 1, got \(repetitionContextSize)")
        }
        guard (-2...2).contains(presencePenalty) else { throw ModelError.invalidInput("presence penalty must be in -2...2, got \(presencePenalty)") }
        guard (-2...2).contains(frequencyPenalty) else { throw ModelError.invalidInput("frequency penalty must be in -2...2, got \(frequencyPenalty)") }
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
    ///
    /// The filters only ever keep a prefix of the tokens sorted by logit, so only the tokens
    /// that can fall in that prefix are sorted: a histogram of the tempered log-probabilities
    /// (one pass) gives the highest cut-off that still holds the top-k tokens and the nucleus's
    /// mass, and only the tokens above it are sorted (a few hundred instead of the vocabulary).
    public static func sample(_ logits: UnsafeBufferPointer<Float>, parameters p: SamplingParameters, rng: inout SeededGenerator) -> Int32 {
        let n = logits.count
        var best = 0
        for i in 1..<n where logits[i] > logits[best] { best = i }
        if p.temperature == 0 { return Int32(best) }

        let maxLogit = Double(logits[best]), temperature = Double(p.temperature)
        let topK = p.topK > 0 && p.topK < n ? p.topK : 0
        if topK == 0 && p.topP >= 1 && p.minP <= 0 {
            // No filter: the whole distribution, walked in vocabulary order.
            var total = 0.0
            for i in 0..<n { total += exp((Double(logits[i]) - maxLogit) / temperature) }
            var u = rng.nextUnit() * total
            for i in 0..<n {
                u -= exp((Double(logits[i]) - maxLogit) / temperature)
                if u < 0 { return Int32(i) }
            }
            return Int32(best)
        }

        let (order, mass) = candidates(logits, maxLogit: maxLogit, temperature: temperature, topK: topK, topP: Double(p.topP), minP: Double(p.minP))
        var probs = order.map { exp((Double(logits[$0]) - maxLogit) / temperature) }
        var keep = probs.count
        if p.topP < 1 {
            // The nucleus is measured against the mass after top-k (all tokens when it is off).
            let total = topK > 0 ? probs.reduce(0, +) : mass
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
        let total = probs.reduce(0, +)
        var u = rng.nextUnit() * total
        for (i, q) in probs.enumerated() {
            u -= q
            if u < 0 { return Int32(order[i]) }
        }
        return Int32(order[keep - 1])
    }

    /// Tokens sorted by logit (ties by id) down to a cut-off low enough that the first `topK`
    /// (when set), the smallest prefix holding `topP` of the mass (when below 1) and every token
    /// at or above `minP` times the best one's probability are all included; with the mass of
    /// the whole vocabulary (sum of exp((logit - max) / T)), which the histogram pass computes.
    static func candidates(_ logits: UnsafeBufferPointer<Float>, maxLogit: Double, temperature: Double,
                           topK: Int, topP: Double, minP: Double) -> (order: [Int], mass: Double) {
        // Buckets of the tempered log-probability z = (logit - max) / T: bucket b holds
        // -(b + 1) * width < z <= -b * width; the last bucket takes everything lower.
        let width = 0.25, buckets = 160
        var count = [Int](repeating: 0, count: buckets), mass = [Double](repeating: 0, count: buckets)
        func bucket(_ z: Double) -> Int {
            let v = -z / width
            return v.isNaN || v >= Double(buckets - 1) ? buckets - 1 : Int(v)
        }
        var total = 0.0
        for i in 0..<logits.count {
            let z = (Double(logits[i]) - maxLogit) / temperature
            let q = exp(z)
            count[bucket(z)] += 1; mass[bucket(z)] += q; total += q
        }
        let minPBucket = minP > 0 ? bucket(log(minP)) : 0
        var cut = buckets - 1, seen = 0, seenMass = 0.0
        for b in 0..<buckets {
            seen += count[b]; seenMass += mass[b]
            let kDone = topK == 0 || seen >= topK
            // a hair more than the nucleus, so rounding in the caller's cumulative sum cannot
            // run past the last candidate
            let pDone = topP >= 1 || seenMass >= min(topP * (1 + 1e-9), 1) * total
            if kDone && pDone && b >= minPBucket { cut = b; break }
        }
        var order: [Int] = []
        order.reserveCapacity(seen)
        for i in 0..<logits.count where bucket((Double(logits[i]) - maxLogit) / temperature) <= cut {
            order.append(i)
        }
        order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if topK > 0 && order.count > topK { order.removeLast(order.count - topK) }
        return (order, total)
    }
}
