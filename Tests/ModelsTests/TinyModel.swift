import Autodiff
import Models
import Tensors

/// Deterministic random tensors for building small models in tests.
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

/// A randomly initialised model of the given architecture, small enough for debug tests.
func makeTinyModel(_ architecture: ModelArchitecture = .llama, seed: UInt64 = 3, tied: Bool = true) throws -> TransformerModel {
    let config = TransformerConfig(
        architecture: architecture, vocabSize: 40, hiddenSize: 24, intermediateSize: 48, layerCount: 2,
        headCount: 4, kvHeadCount: 2, headDim: architecture == .qwen3 ? 8 : nil, rmsNormEps: 1e-5,
        ropeBase: 10_000, contextLength: 128, tiedEmbeddings: tied)
    var rng = FixtureRNG(seed: seed)
    let d = config.hiddenSize, hd = config.headDim
    func linear(_ name: String, _ out: Int, _ inF: Int, bias: Bool = false) throws -> Linear {
        Linear(name: name, weight: try DenseMatrix(rng.tensor([out, inF], scale: 0.4)),
               bias: bias ? rng.tensor([out], scale: 0.2) : nil)
    }
    func norm(_ n: Int) -> RMSNorm {
        let w = rng.tensor([n], scale: 0.3)
        for i in 0..<n { w[flat: i] += 1 }
        return RMSNorm(weight: w, eps: config.rmsNormEps)
    }
    let blocks = try (0..<config.layerCount).map { l -> TransformerBlock in
        let p = "model.layers.\(l)"
        let bias = config.attentionBias
        let attention = Attention(
            q: try linear("\(p).self_attn.q_proj", config.headCount * hd, d, bias: bias),
            k: try linear("\(p).self_attn.k_proj", config.kvHeadCount * hd, d, bias: bias),
            v: try linear("\(p).self_attn.v_proj", config.kvHeadCount * hd, d, bias: bias),
            o: try linear("\(p).self_attn.o_proj", d, config.headCount * hd),
            qNorm: config.qkNorm ? norm(hd) : nil, kNorm: config.qkNorm ? norm(hd) : nil, config: config)
        let mlp = MLP(
            gate: try linear("\(p).mlp.gate_proj", config.intermediateSize, d),
            up: try linear("\(p).mlp.up_proj", config.intermediateSize, d),
            down: try linear("\(p).mlp.down_proj", d, config.intermediateSize))
        return TransformerBlock(attentionNorm: norm(d), attention: attention, mlpNorm: norm(d), mlp: mlp)
    }
    let embedding = rng.tensor([config.vocabSize, d], scale: 1)
    return try TransformerModel(
        config: config, embedding: embedding, blocks: blocks, finalNorm: norm(d),
        outputHead: tied ? nil : rng.tensor([config.vocabSize, d], scale: 0.5))
}
