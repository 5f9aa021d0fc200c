/// Reproducible values in [-1, 1) from a xorshift generator, for kernel tests.
func pseudoRandomValues(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed | 1
    return (0..<count).map { _ in
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(state >> 40) / Float(1 << 24) * 2 - 1
    }
}
