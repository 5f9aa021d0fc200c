/// The order in which an epoch visits the training rows: a permutation that depends only on
/// (seed, epoch), so a resumed run recomputes the same order and the checkpoint's saved order
/// can be checked against it.
///
/// Usage: `let order = EpochShuffler(seed: 1234).order(epoch: 0, count: rows.count)`
public struct EpochShuffler: Sendable {
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// A permutation of 0..<count (Fisher-Yates driven by a generator seeded from seed and epoch).
    public func order(epoch: Int, count: Int) -> [Int] {
        var indices = Array(0..<max(count, 0))
        // Mix the epoch into the seed through SplitMix so neighbouring epochs get unrelated streams.
        var mixer = SplitMix64(state: seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0xD1B5_4A32_D192_ED03))
        var rng = TrainingRNG(seed: mixer.next())
        guard indices.count > 1 else { return indices }
        for i in stride(from: indices.count - 1, to: 0, by: -1) {
            indices.swapAt(i, rng.nextIndex(below: i + 1))
        }
        return indices
    }
}
