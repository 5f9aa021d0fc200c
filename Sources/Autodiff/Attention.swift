import CKernels
import Tensors

extension Tape {
    /// Fused causal grouped-query attention: softmax(q k^T / sqrt(headDim)) v per head, where
    /// query head h reads kv head h / (heads / kvHeads), token i sees tokens j <= i of its own
    /// packed sequence only. The score matrix is never stored: the forward pass keeps one
    /// log-sum-exp per query and the backward pass recomputes probabilities from it.
    ///
    /// Shapes: q [batch*seqLen, heads*headDim], k and v [batch*seqLen, kvHeads*headDim]
    /// -> [batch*seqLen, heads*headDim].
    /// Usage: `let a = try tape.attention(q, k, v, heads: 9, kvHeads: 3, headDim: 64, layout: layout)`
    public func attention(
        _ q: Variable, _ k: Variable, _ v: Variable, heads: Int, kvHeads: Int, headDim: Int,
        layout: PackedSequences
    ) throws -> Variable {
        let T = layout.seqLen, B = layout.batch
        guard heads > 0, kvHeads > 0, headDim > 0, heads % kvHeads == 0 else {
            throw TensorError.invalidArgument(
                op: "attention", message: "heads \(heads) must be a positive multiple of kvHeads \(kvHeads)")
        }
        let qShape: Shape = [B * T, heads * headDim], kvShape: Shape = [B * T, kvHeads * headDim]
        guard q.value.count == qShape.count else {
            throw TensorError.shapeMismatch(op: "attention q", lhs: q.shape, rhs: qShape)
        }
        guard k.value.count == kvShape.count else {
            throw TensorError.shapeMismatch(op: "attention k", lhs: k.shape, rhs: kvShape)
        }
        guard v.value.count == kvShape.count else {
            throw TensorError.shapeMismatch(op: "attention v", lhs: v.shape, rhs: kvShape)
        }
        let scale = 1 / Float(headDim).squareRoot()
        let out = Tensor(uninitialized: q.shape)
        let lse = Tensor(uninitialized: [B, heads, T])
        let qs = T * heads * headDim, kvs = T * kvHeads * headDim
        let qp = q.value.pointer, kp = k.value.pointer, vp = v.value.pointer
        layout.segmentStart.withUnsafeBufferPointer { seg in
            let segBase = seg.baseAddress!
            ThreadPool.shared.forEach(B * heads) { unit in
                let b = unit / heads, h = unit % heads
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: T)
                defer { scratch.deallocate() }
                tc_attention_forward(
                    qp + b * qs, kp + b * kvs, vp + b * kvs, segBase + b * T, out.pointer + b * qs,
                    lse.pointer + b * heads * T, T, heads, kvHeads, headDim, scale, h, h + 1, scratch)
            }
        }
        return output(out, op: "attention", inputs: [q, k, v]) { dout in
            let dq = q.requiresGrad ? q.gradBuffer().pointer : nil
            let dk = k.requiresGrad ? k.gradBuffer().pointer : nil
            let dv = v.requiresGrad ? v.gradBuffer().pointer : nil
            layout.segmentStart.withUnsafeBufferPointer { seg in
                let segBase = seg.baseAddress!
                ThreadPool.shared.forEach(B * kvHeads) { unit in
                    let b = unit / kvHeads, g = unit % kvHeads
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * T)
                    defer { scratch.deallocate() }
                    tc_attention_backward(
                        qp + b * qs, kp + b * kvs, vp + b * kvs, segBase + b * T,
                        out.pointer + b * qs, lse.pointer + b * heads * T, dout.pointer + b * qs,
                        dq.map { $0 + b * qs }, dk.map { $0 + b * kvs }, dv.map { $0 + b * kvs },
                        T, heads, kvHeads, headDim, scale, g, scratch)
                }
            }
        }
    }
}
