import CKernels
import Tensors

extension Tape {
    /// Query rows per block of the fused attention's products (`attention(queryBlock:)`).
    public static let attentionQueryBlock = 64

    /// Fused causal grouped-query attention: softmax(q k^T / sqrt(headDim)) v per head, where
    /// query head h reads kv head h / (heads / kvHeads), token i sees tokens j <= i of its own
    /// packed sequence only. Scores exist only while one (row, head, sequence, block of
    /// `queryBlock` query rows) is being multiplied, against the keys up to the block's last
    /// row: the products skip the keys above the diagonal block by block (two sgemm calls
    /// forward, five backward, per block). The forward pass keeps one log-sum-exp per query
    /// and the backward pass recomputes probabilities from it.
    ///
    /// Shapes: q [batch*seqLen, heads*headDim], k and v [batch*seqLen, kvHeads*headDim]
    /// -> [batch*seqLen, heads*headDim].
    /// Usage: `let a = try tape.attention(q, k, v, heads: 9, kvHeads: 3, headDim: 64, layout: layout)`
    public func attention(
        _ q: Variable, _ k: Variable, _ v: Variable, heads: Int, kvHeads: Int, headDim: Int,
        layout: PackedSequences, queryBlock: Int = Tape.attentionQueryBlock
    ) throws -> Variable {
        let T = layout.seqLen, B = layout.batch
        guard heads > 0, kvHeads > 0, headDim > 0, heads % kvHeads == 0 else {
            throw TensorError.invalidArgument(
                op: "attention", message: "heads \(heads) must be a positive multiple of kvHeads \(kvHeads)")
        }
        guard queryBlock > 0 else {
            throw TensorError.invalidArgument(op: "attention", message: "queryBlock \(queryBlock) must be positive")
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
        let group = heads / kvHeads
        let ldq = heads * headDim, ldkv = kvHeads * headDim
        let qp = q.value.pointer, kp = k.value.pointer, vp = v.value.pointer
        // Packed rows hold several sequences; attention is block-diagonal, so each block gets
        // its own products instead of one masked T x T product per row.
        let segments = Self.segments(layout)
        let longest = segments.joined().map(\.count).max() ?? 1
        let scratch = min(queryBlock, longest) * longest

        // Per (row, query head, segment starting at token t0, query rows r0 ..< r0 + rows):
        //   s = scale * q[r0...] k[0 ..< cols]^T [rows, cols] -> causal softmax -> out[r0...] = p v[0 ..< cols]
        ThreadPool.shared.forEach(B * heads) { unit in
            let b = unit / heads, h = unit % heads, g = h / group
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: scratch)
            defer { scores.deallocate() }
            for segment in segments[b] {
                let t0 = b * T + segment.lowerBound, n = segment.count
                for r0 in stride(from: 0, to: n, by: queryBlock) {
                    let rows = min(queryBlock, n - r0), cols = r0 + rows
                    GEMM.run(transposeA: false, transposeB: true, m: rows, n: cols, k: headDim, alpha: scale,
                             a: qp + (t0 + r0) * ldq + h * headDim, lda: ldq, b: kp + t0 * ldkv + g * headDim, ldb: ldkv,
                             c: scores, ldc: cols)
                    tc_causal_softmax_forward(scores, rows, cols, r0,
                                              lse.pointer + (b * heads + h) * T + segment.lowerBound + r0)
                    GEMM.run(transposeA: false, transposeB: false, m: rows, n: headDim, k: cols,
                             a: scores, lda: cols, b: vp + t0 * ldkv + g * headDim, ldb: ldkv,
                             c: out.pointer + (t0 + r0) * ldq + h * headDim, ldc: ldq)
                }
            }
        }
        return output(out, op: "attention", inputs: [q, k, v]) { dout in
            let dq = q.requiresGrad ? q.gradBuffer().pointer : nil
            let dk = k.requiresGrad ? k.gradBuffer().pointer : nil
            let dv = v.requiresGrad ? v.gradBuffer().pointer : nil
            // One unit owns a kv head and the query heads that read it, so no two units write
            // the same gradient rows. With p rebuilt from lse and ds = scale * p (dp - delta),
            // per block of query rows against keys 0 ..< cols:
            //   dp = dout v^T;  dq += ds k;  dk += ds^T q;  dv += p^T dout
            ThreadPool.shared.forEach(B * kvHeads) { unit in
                let b = unit / kvHeads, g = unit % kvHeads
                let probs = UnsafeMutablePointer<Float>.allocate(capacity: 2 * scratch)
                defer { probs.deallocate() }
                let dscores = probs + scratch
                for h in g * group..<(g + 1) * group {
                    for segment in segments[b] {
                        let t0 = b * T + segment.lowerBound, n = segment.count
                        let kg = kp + t0 * ldkv + g * headDim, vg = vp + t0 * ldkv + g * headDim
                        for r0 in stride(from: 0, to: n, by: queryBlock) {
                            let rows = min(queryBlock, n - r0), cols = r0 + rows
                            let qh = qp + (t0 + r0) * ldq + h * headDim, doh = dout.pointer + (t0 + r0) * ldq + h * headDim
                            GEMM.run(transposeA: false, transposeB: true, m: rows, n: cols, k: headDim, alpha: scale,
                                     a: qh, lda: ldq, b: kg, ldb: ldkv, c: probs, ldc: cols)
                            GEMM.run(transposeA: false, transposeB: true, m: rows, n: cols, k: headDim,
                                     a: doh, lda: ldq, b: vg, ldb: ldkv, c: dscores, ldc: cols)
                            tc_causal_softmax_backward(probs, dscores, lse.pointer + (b * heads + h) * T + segment.lowerBound + r0,
                                                       doh, out.pointer + (t0 + r0) * ldq + h * headDim, ldq, headDim, scale,
                                                       rows, cols, r0)
                            if let dq {
                                GEMM.run(transposeA: false, transposeB: false, m: rows, n: headDim, k: cols, a: dscores, lda: cols,
                                         b: kg, ldb: ldkv, beta: 1, c: dq + (t0 + r0) * ldq + h * headDim, ldc: ldq)
                            }
                            if let dk {
                                GEMM.run(transposeA: true, transposeB: false, m: cols, n: headDim, k: rows, a: dscores, lda: cols,
                                         b: qh, ldb: ldq, beta: 1, c: dk + t0 * ldkv + g * headDim, ldc: ldkv)
                            }
                            if let dv {
                                GEMM.run(transposeA: true, transposeB: false, m: cols, n: headDim, k: rows, a: probs, lda: cols,
                                         b: doh, ldb: ldq, beta: 1, c: dv + t0 * ldkv + g * headDim, ldc: ldkv)
                            }
                        }
                    }
                }
            }
        }
    }

    /// For each row of the layout, the ranges of positions its packed sequences occupy.
    static func segments(_ layout: PackedSequences) -> [[Range<Int>]] {
        guard layout.seqLen > 0 else { return Array(repeating: [], count: layout.batch) }
        return (0..<layout.batch).map { b in
            var ranges: [Range<Int>] = []
            var start = 0
            for t in 1...layout.seqLen where t == layout.seqLen || layout.segmentStart[b * layout.seqLen + t] != layout.segmentStart[b * layout.seqLen + t - 1] {
                ranges.append(start..<t)
                start = t
            }
            return ranges
        }
    }
}
