import Models
import Tensors

/// Deterministic random tensors for test fixtures.
struct FixtureRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> Float {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(state >> 40) / Float(1 << 24) * 2 - 1
    }
    mutating func tensor(_ shape: Shape, scale: Float) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t[flat: i] = next() * scale }
        return t
    }
}

/// A randomly initialised two-layer model, small enough for debug tests.
func makeTinyModel(_ architecture: ModelArchitecture = .llama, seed: UInt64 = 3, tied: Bool = true) throws -> TransformerModel {
    let config = TransformerConfig(
        architecture: architecture, vocabSize: 40, hiddenSize: 24, intermediateSize: 48, layerCount: 2,
        headCount: 4, kvHeadCount: 2, headDim: architecture == .qwen3 ? 8 : nil, rmsNormEps: 1e-5,
        ropeBase: 10_000, contextLength: 128, tiedEmbeddings: tied)
    return try TransformerModel.randomlyInitialised(config, seed: seed)
}
