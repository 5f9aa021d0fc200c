import Tensors

extension TransformerModel {
    /// A model of the given configuration with random weights (uniform, scaled by fan-in; norm
    /// weights near 1). For tests, benchmarks and experiments that need no pretrained weights.
    ///
    /// Usage: `let model = try TransformerModel.randomlyInitialised(config, seed: 1)`
    public static func randomlyInitialised(_ config: TransformerConfig, seed: UInt64) throws -> TransformerModel {
        try config.validate()
        var rng = SeededGenerator(seed: seed)
        func uniform(_ shape: Shape, bound: Float) -> Tensor {
            let t = Tensor(uninitialized: shape)
            for i in 0..<t.count { t[flat: i] = Float(rng.nextUnit() * 2 - 1) * bound }
            return t
        }
        let d = config.hiddenSize, hd = config.headDim
        func linear(_ name: String, _ out: Int, _ inF: Int, bias: Bool = false) throws -> Linear {
            // 2/sqrt(fan_in) keeps activations O(1) while making logits non-trivial
            Linear(name: name, weight: try DenseMatrix(uniform([out, inF], bound: 2 / Float(inF).squareRoot())),
                   bias: bias ? uniform([out], bound: 0.2) : nil)
        }
        func norm(_ n: Int) -> RMSNorm {
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
        let embedding = uniform([config.vocabSize, d], bound: 1)
        return try TransformerModel(
            config: config, embedding: embedding, blocks: blocks, finalNorm: norm(d),
            outputHead: config.tiedEmbeddings ? nil : uniform([config.vocabSize, d], bound: 0.5))
    }
}
