import Autodiff
import CKernels
import Tensors

/// Something that changes a frozen linear layer's output, such as a LoRA adapter. Defined here
/// so models can host adapters without depending on the layer that implements them.
public protocol LinearAdapter: AnyObject {
    /// The adapted layer's output for input x: the frozen product x W^T + bias plus the
    /// adapter's contribution, computed together so the adapter can record them as one op.
    func callAsFunction(_ tape: Tape, input x: Variable, weight: FrozenMatrix, bias: Variable?) throws -> Variable
}

/// A frozen projection with an optional frozen bias and an optional adapter.
///
/// Usage: `let y = try layer(tape, x)`
public final class Linear {
    /// Hugging Face module path, e.g. "model.layers.0.self_attn.q_proj".
    public let name: String
    public let weight: FrozenMatrix
    public let bias: Variable?
    public var adapter: LinearAdapter?

    public init(name: String, weight: FrozenMatrix, bias: Tensor? = nil) {
        self.name = name
        self.weight = weight
        self.bias = bias.map { Variable($0) }
    }

    public var inFeatures: Int { weight.columns }
    public var outFeatures: Int { weight.rows }

    public func callAsFunction(_ tape: Tape, _ x: Variable) throws -> Variable {
        if let adapter { return try adapter(tape, input: x, weight: weight, bias: bias) }
        return try tape.linear(x, frozen: weight, bias: bias)
    }
}

extension Linear {
    /// The outputs of several layers on the same input for inference, computed in one pass
    /// over their x16 weights (QuantizedMatrix.multiplyStreamingBlocks); nil when that does
    /// not apply (a bias, an adapter, an input that needs a gradient, other storage, many rows),
    /// and the caller runs the layers one by one.
    static func fusedInference(_ layers: [Linear], _ x: Variable) -> [Variable]? {
        guard x.shape.rank == 2 else { return nil }
        let rows = x.shape.rows
        // A weight kept in two forms (PrefillDecodeMatrix) takes part with its form for these rows.
        func quantized(_ layer: Linear) -> QuantizedMatrix? {
            ((layer.weight as? PrefillDecodeMatrix)?.form(forRows: rows) ?? layer.weight) as? QuantizedMatrix
        }
        guard !x.requiresGrad, rows <= QuantizedMatrix.streamingMaxRows,
              layers.allSatisfy({ $0.adapter == nil && $0.bias == nil && quantized($0)?.isInterleaved == true })
        else { return nil }
        let outputs = layers.map { Tensor(uninitialized: [rows, $0.outFeatures]) }
        let products = zip(layers, outputs).compactMap { layer, y in
            quantized(layer).map { (matrix: $0, y: y.pointer) }
        }
        guard products.count == layers.count,
              QuantizedMatrix.multiplyStreamingBlocks(x.value.pointer, count: rows, products: products) else { return nil }
        return outputs.map { Variable($0) }
    }
}

/// Root-mean-square normalisation with a frozen weight.
public final class RMSNorm {
    public let weight: Variable
    public let eps: Float

    public init(weight: Tensor, eps: Float) {
        self.weight = Variable(weight)
        self.eps = eps
    }

    public func callAsFunction(_ tape: Tape, _ x: Variable) throws -> Variable {
        try tape.rmsNorm(x, weight: weight, eps: eps)
    }
}

/// Grouped-query self-attention with rotary positions (half-rotation, the Hugging Face layout;
/// GGUF Llama weights are un-permuted into it when loaded).
public final class Attention {
    public let q, k, v, o: Linear
    /// Per-head RMSNorm on q and k (Qwen3), applied before the rotary embedding.
    public let qNorm, kNorm: RMSNorm?
    let heads, kvHeads, headDim: Int
    let ropeBase: Float

    public init(q: Linear, k: Linear, v: Linear, o: Linear, qNorm: RMSNorm?, kNorm: RMSNorm?, config: TransformerConfig) {
        self.q = q; self.k = k; self.v = v; self.o = o
        self.qNorm = qNorm; self.kNorm = kNorm
        heads = config.headCount; kvHeads = config.kvHeadCount; headDim = config.headDim
        ropeBase = config.ropeBase
    }

    /// Shapes: x [rows, hidden] -> [rows, hidden].
    public func callAsFunction(_ tape: Tape, _ x: Variable, layer: Int, context: AttentionContext) throws -> Variable {
        let rows = x.shape.rows
        var qs: Variable, ks: Variable
        let vs: Variable
        if let qkv = Linear.fusedInference([q, k, v], x) {
            qs = qkv[0]; ks = qkv[1]; vs = qkv[2]
        } else {
            qs = try q(tape, x); ks = try k(tape, x); vs = try v(tape, x)
        }
        if let qNorm, let kNorm {
            qs = try tape.reshape(try qNorm(tape, try tape.reshape(qs, to: [rows * heads, headDim])), to: [rows, heads * headDim])
            ks = try tape.reshape(try kNorm(tape, try tape.reshape(ks, to: [rows * kvHeads, headDim])), to: [rows, kvHeads * headDim])
        }
        let positions = context.positions
        // Nothing else reads the projections' (or q/k norms') outputs: rotate them where they are.
        qs = try tape.rotary(qs, positions: positions, headDim: headDim, base: ropeBase, convention: .halfRotation, inPlace: true)
        ks = try tape.rotary(ks, positions: positions, headDim: headDim, base: ropeBase, convention: .halfRotation, inPlace: true)
        let attended: Variable
        switch context {
        case .packed(let layout):
            attended = try tape.attention(qs, ks, vs, heads: heads, kvHeads: kvHeads, headDim: headDim, layout: layout)
        case .cached(let batch):
            attended = Variable(cachedAttention(qs.value, ks.value, vs.value, layer: layer, batch: batch))
        }
        return try o(tape, attended)
    }

    /// Inference-only attention of new rows against each sequence's cache.
    ///
    /// All (sequence, head) pairs of the batch go to the cores in one parallel loop, split only
    /// when there is enough work: a decoding step of one short sequence costs less than waking
    /// a second thread.
    private func cachedAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, layer: Int, batch: CachedBatch) -> Tensor {
        let out = Tensor(uninitialized: q.shape)
        let qWidth = heads * headDim, kvWidth = kvHeads * headDim
        let scale = 1 / Float(headDim).squareRoot()
        struct Sequence { let keys, values: UnsafePointer<Float>; let row, start, count: Int }
        var sequences: [Sequence] = []
        sequences.reserveCapacity(batch.caches.count)
        var row = 0, work = 0, longest = 1
        for (cache, n) in zip(batch.caches, batch.newTokens) {
            let start = cache.length
            let (kc, vc) = cache.append(layer: layer, keys: k.pointer + row * kvWidth, values: v.pointer + row * kvWidth, count: n)
            sequences.append(Sequence(keys: kc, values: vc, row: row, start: start, count: n))
            work += n * (start + n) * heads
            longest = max(longest, start + n)
            row += n
        }
        let items = sequences.count * heads
        // about 64K multiply-adds per task (scores and weighted values, per item)
        let perItem = max(1, work / max(items, 1) * headDim * 2)
        let (qp, op, hd, h, kvh) = (q.pointer, out.pointer, headDim, heads, kvHeads)
        ThreadPool.shared.parallelFor(items, minChunk: max(1, 65536 / perItem)) { range in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: longest)
            defer { scratch.deallocate() }
            for item in range {
                let s = sequences[item / h], head = item % h
                tc_attention_cached(qp + s.row * qWidth, s.keys, s.values, op + s.row * qWidth, s.count, s.start,
                                    h, kvh, hd, scale, head, head + 1, scratch)
            }
        }
        return out
    }
}

/// The SwiGLU feed-forward block: down(silu(gate(x)) * up(x)).
public final class MLP {
    public let gate, up, down: Linear

    public init(gate: Linear, up: Linear, down: Linear) {
        self.gate = gate; self.up = up; self.down = down
    }

    public func callAsFunction(_ tape: Tape, _ x: Variable) throws -> Variable {
        if let gateUp = Linear.fusedInference([gate, up], x) {
            return try down(tape, try tape.swiglu(gate: gateUp[0], up: gateUp[1]))
        }
        return try down(tape, try tape.swiglu(gate: try gate(tape, x), up: try up(tape, x)))
    }
}

/// One pre-norm decoder block: h + attn(norm(h)), then h + mlp(norm(h)).
public final class TransformerBlock {
    public let attentionNorm: RMSNorm
    public let attention: Attention
    public let mlpNorm: RMSNorm
    public let mlp: MLP

    public init(attentionNorm: RMSNorm, attention: Attention, mlpNorm: RMSNorm, mlp: MLP) {
        self.attentionNorm = attentionNorm; self.attention = attention
        self.mlpNorm = mlpNorm; self.mlp = mlp
    }

    public func callAsFunction(_ tape: Tape, _ h: Variable, layer: Int, context: AttentionContext) throws -> Variable {
        let a = try tape.add(h, try attention(tape, try attentionNorm(tape, h), layer: layer, context: context))
        return try tape.add(a, try mlp(tape, try mlpNorm(tape, a)))
    }

    /// The seven projections, in Hugging Face module order.
    public var linears: [Linear] { [attention.q, attention.k, attention.v, attention.o, mlp.gate, mlp.up, mlp.down] }
}
