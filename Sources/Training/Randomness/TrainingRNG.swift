/// Errors restoring random-number state from a checkpoint.
public enum RandomStateError: Error, Equatable, CustomStringConvertible {
    case wrongWordCount(expected: Int, found: Int)
    case allZero

    public var description: String {
        switch self {
        case let .wrongWordCount(expected, found):
            return "random state has \(found) words, expected \(expected); the checkpoint's /rng dataset is damaged"
        case .allZero:
            return "random state is all zeros, which xoshiro256** cannot leave; the checkpoint's /rng dataset is damaged"
        }
    }
}

/// The training run's random-number generator: xoshiro256** (Blackman and Vigna), seeded
/// through SplitMix64. Its whole state is four words, saved in checkpoints so that a resumed run
/// draws the same numbers as an uninterrupted one. The algorithm is fixed here rather than
/// borrowed from the standard library so sequences never change with the toolchain.
///
/// Usage: `var rng = TrainingRNG(seed: 1234); let u = rng.nextDouble()`
public struct TrainingRNG: RandomNumberGenerator, Equatable, Sendable {
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose state is derived from `seed` with SplitMix64 (never all zero).
    public init(seed: UInt64) {
        var mixer = SplitMix64(state: seed)
        state = (mixer.next(), mixer.next(), mixer.next(), mixer.next())
    }

    /// Restores a generator from `stateWords` (as written by `stateWords`).
    public init(stateWords: [UInt64]) throws {
        guard stateWords.count == 4 else { throw RandomStateError.wrongWordCount(expected: 4, found: stateWords.count) }
        guard stateWords.contains(where: { $0 != 0 }) else { throw RandomStateError.allZero }
        state = (stateWords[0], stateWords[1], stateWords[2], stateWords[3])
    }

    /// The four state words, for checkpoints.
    public var stateWords: [UInt64] { [state.0, state.1, state.2, state.3] }

    public mutating func next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotateLeft(state.3, 45)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in 0..<bound without modulo bias (Lemire's multiply-and-reject).
    public mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0, "nextIndex(below:) needs a positive bound")
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            let threshold = (0 &- range) % range
            while product.low < threshold { product = next().multipliedFullWidth(by: range) }
        }
        return Int(product.high)
    }

    public static func == (a: TrainingRNG, b: TrainingRNG) -> Bool { a.stateWords == b.stateWords }

    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

/// SplitMix64: turns one seed word into well-mixed words; used to seed xoshiro.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
