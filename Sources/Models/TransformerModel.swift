import Autodiff
import Tensors

/// A Llama-family decoder-only transformer with frozen base weights.
///
/// The same modules serve training (packed rows on a recording `Tape`), scoring and cached
/// generation; adapters attach to the `Linear` layers.
///
/// Usage: `let hidden = try model.hiddenStates(tape, tokens: ids, context: .packed(layout))`
public final class TransformerModel {
    public let config: TransformerConfig
    /// Token embeddings [vocab, hidden], frozen.
    public let embedding: Variable
    public let blocks: [TransformerBlock]
    public let finalNorm: RMSNorm
    /// Output projection [vocab, hidden]; the embedding itself when tied.
    public let outputHead: Variable
    /// A compressed copy of the output projection (the GGUF's quantised blocks) that `logits`
    /// uses for a few rows at a time, as in decoding, where streaming the Float32 head would
    /// cost more than all layers together. Training keeps using the Float32 `outputHead`.
    public let inferenceHead: FrozenMatrix?
    /// Another storage of the output head (bfloat16 with `weights: bf16`) that `loss` multiplies
    /// with instead of the Float32 `outputHead`; nil uses `outputHead`.
    public var trainingHead: RowBandMatrix?
    /// Keep only each block's input between the forward and backward passes of training and
    /// recompute the block's activations during the backward pass (`Tape.checkpoint`): less
    /// memory for long sequences and large batches, for about one more forward pass.
    public var gradientCheckpointing = false

    public init(config: TransformerConfig, embedding: Tensor, blocks: [TransformerBlock], finalNorm: RMSNorm, outputHead: Tensor?,
                inferenceHead: FrozenMatrix? = nil) throws {
        try config.validate()
        guard embedding.shape == [config.vocabSize, config.hiddenSize] else {
            throw ModelError.tensorShape(name: "embedding", file: "model", expected: [config.vocabSize, config.hiddenSize], found: embedding.shape.dims)
        }
        guard blocks.count == config.layerCount else {
            throw ModelError.invalidConfig("\(blocks.count) blocks for \(config.layerCount) layers")
        }
        self.config = config
        self.embedding = Variable(embedding)
        self.blocks = blocks
        self.finalNorm = finalNorm
        self.outputHead = outputHead.map { Variable($0) } ?? self.embedding
        if let head = inferenceHead, head.rows != config.vocabSize || head.columns != config.hiddenSize {
            throw ModelError.tensorShape(name: "inference head", file: "model", expected: [config.vocabSize, config.hiddenSize],
                                         found: [head.rows, head.columns])
        }
        self.inferenceHead = inferenceHead
    }

    /// Most rows `logits` computes with `inferenceHead`; more rows amortise the Float32 head.
    public static let inferenceHeadMaxRows = 16

    /// Every adaptable projection, keyed by Hugging Face module path.
    public var linears: [Linear] { blocks.flatMap(\.linears) }

    /// Bytes held by the frozen weights.
    public var weightBytes: Int {
        var total = embedding.value.count * 4 + finalNorm.weight.value.count * 4
        if outputHead !== embedding { total += outputHead.value.count * 4 }
        total += inferenceHead?.byteCount ?? 0
        total += trainingHead?.byteCount ?? 0
        for b in blocks {
            total += b.linears.reduce(0) { $0 + $1.weight.byteCount + ($1.bias?.value.count ?? 0) * 4 }
            total += (b.attentionNorm.weight.value.count + b.mlpNorm.weight.value.count) * 4
        }
        return total
    }

    /// Final-normed hidden states for `tokens` laid out as the context says.
    ///
    /// Shapes: tokens [rows] -> [rows, hidden].
    public func hiddenStates(_ tape: Tape, tokens: [Int32], context: AttentionContext) throws -> Variable {
        var h = try tape.embedding(tokens, table: embedding)
        for (layer, block) in blocks.enumerated() {
            if gradientCheckpointing, case .packed = context {
                h = try tape.checkpoint(h) { tape, x in try block(tape, x, layer: layer, context: context) }
            } else {
                h = try block(tape, h, layer: layer, context: context)
            }
        }
        if case .cached(let batch) = context {
            for (cache, n) in zip(batch.caches, batch.newTokens) { cache.advance(by: n) }
        }
        return try finalNorm(tape, h)
    }

    /// Mean next-token cross-entropy over positions whose target is not `Tape.ignoreIndex`.
    public func loss(_ tape: Tape, tokens: [Int32], targets: [Int32], layout: PackedSequences) throws -> CrossEntropyLoss {
        let hidden = try hiddenStates(tape, tokens: tokens, context: .packed(layout))
        if let trainingHead { return try tape.crossEntropy(hidden: hidden, frozenHead: trainingHead, targets: targets) }
        return try tape.crossEntropy(hidden: hidden, head: outputHead, targets: targets)
    }

    /// Log-probability of each set target (in position order), for sequence-level objectives.
    ///
    /// Shapes: tokens [rows], targets [rows] -> [targets that are not `Tape.ignoreIndex`].
    /// Usage: `let lp = try model.targetLogProbabilities(tape, tokens: t, targets: y, layout: l)`
    public func targetLogProbabilities(_ tape: Tape, tokens: [Int32], targets: [Int32], layout: PackedSequences) throws -> Variable {
        let hidden = try hiddenStates(tape, tokens: tokens, context: .packed(layout))
        if let trainingHead { return try tape.targetLogProbabilities(hidden: hidden, frozenHead: trainingHead, targets: targets) }
        return try tape.targetLogProbabilities(hidden: hidden, head: outputHead, targets: targets)
    }

    /// Full-vocabulary logits for selected rows of final hidden states (inference).
    ///
    /// Shapes: hidden [rows, d], rows [k] -> [k, vocab].
    public func logits(hidden: Tensor, rows: [Int]) -> Tensor {
        let d = config.hiddenSize, vocab = config.vocabSize
        let selected = Tensor(uninitialized: [rows.count, d])
        for (i, r) in rows.enumerated() { (selected.pointer + i * d).update(from: hidden.pointer + r * d, count: d) }
        let out = Tensor(uninitialized: [rows.count, vocab])
        if let head = inferenceHead, rows.count <= Self.inferenceHeadMaxRows {
            head.multiply(selected.pointer, count: rows.count, into: out.pointer, accumulate: false)
            return out
        }
        GEMM.run(transposeA: false, transposeB: true, m: rows.count, n: vocab, k: d, a: selected.pointer, lda: d,
                 b: outputHead.value.pointer, ldb: d, c: out.pointer, ldc: vocab)
        return out
    }

    /// A fresh KV cache sized for this model.
    public func makeCache(capacity: Int = 256) -> KVCache {
        KVCache(layers: config.layerCount, width: config.kvHeadCount * config.headDim, capacity: capacity)
    }
}
