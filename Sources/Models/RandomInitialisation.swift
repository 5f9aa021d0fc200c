import Foundation
import Tensors

/// How `TransformerModel.randomlyInitialised` draws its weights.
public enum RandomInitialisation: Sendable, Equatable {
    /// Uniform in ±2/sqrt(fan_in) for projections, ±1 for the embedding, norm weights 1 ± 0.3:
    /// activations stay O(1) and logits are large, which gradient checks on tiny models want.
    /// At a 150k vocabulary its logits spread past 87 nats (first loss about 85), the case that
    /// exposed subnormal stalls; it is kept as that regression test, not as a benchmark.
    case uniformFanIn
    /// As transformers initialises a new model (`_init_weights`): every projection and the
    /// embedding normal with mean 0 and this standard deviation (`initializer_range`, 0.02 for
    /// Qwen3), biases 0, norm weights 1. The first loss is near ln(vocabulary), as a real model's.
    case normal(standardDeviation: Float)
}

extension TransformerModel {
    /// A model of the given configuration with random weights. For tests, benchmarks and
    /// experiments that need no pretrained weights.
    ///
    /// Usage: `let model = try TransformerModel.randomlyInitialised(config, seed: 1, initialisation: .normal(standardDeviation: 0.02))`
    public static func randomlyInitialised(_ config: TransformerConfig, seed: UInt64,
                                           initialisation: RandomInitialisation = .uniformFanIn) throws -> TransformerModel {
        try config.validate()
        var rng = SeededGenerator(seed: seed)
        func uniform(_ shape: Shape, bound: Float) -> Tensor {
            let t = Tensor(uninitialized: shape)
            for i in 0..<t.count { t[flat: i] = Float(rng.nextUnit() * 2 - 1) * bound }
            return t
        }
        // Box-Muller: two uniforms give two independent standard normals.
        func normal(_ shape: Shape, std: Float) -> Tensor {
            let t = Tensor(uninitialized: shape)
            var i = 0
            while i < t.count {
                let u1 = max(rng.nextUnit(), Double.leastNonzeroMagnitude), u2 = rng.nextUnit()
                let radius = (-2 * log(u1)).squareRoot(), angle = 2 * Double.pi * u2
                t[flat: i] = Float(radius * cos(angle)) * std
                if i + 1 < t.count { t[flat: i + 1] = Float(radius * sin(angle)) * std }
                i += 2
            }
            return t
        }
        func weight(_ shape: Shape, uniformBound: Float) -> Tensor {
            switch initialisation {
            case .uniformFanIn: return uniform(shape, bound: uniformBound)
            case .normal(let std): return normal(shape, std: std)
            }
        }
        let d = config.hiddenSize, hd = config.headDim
        func linear(_ name: String, _ out: Int, _ inF: Int, bias: Bool = false) throws -> Linear {
            // 2/sqrt(fan_in) keeps activations O(1) while making logits non-trivial
            let b: Tensor? = bias ? (initialisation == .uniformFanIn ? uniform([out], bound: 0.2) : Tensor(zeros: [out])) : nil
            return Linear(name: name, weight: try DenseMatrix(weight([out, inF], uniformBound: 2 / Float(inF).squareRoot())), bias: b)
        }
        func norm(_ n: Int) -> RMSNorm {
            guard initialisation == .uniformFanIn else { return RMSNorm(weight: Tensor(shape: [n], repeating: 1), eps: config.rmsNormEps) }
            let w = uniform([n], bound: 0.3)
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
        let embedding = weight([config.vocabSize, d], uniformBound: 1)
        return try TransformerModel(
            config: config, embedding: embedding, blocks: blocks, finalNorm: norm(d),
            outputHead: config.tiedEmbeddings ? nil : weight([config.vocabSize, d], uniformBound: 0.5))
    }
}
