import Tensors

extension Tape {
    /// y = x W^T + bias + scale * (x' A^T) B^T: a frozen projection plus a trainable low-rank
    /// update (LoRA) as one op, where x' is x or x after dropout.
    ///
    /// Recorded as one node so the backward pass needs only x' and the narrow product
    /// u = x' A^T [rows, rank]; the separate base output, low-rank delta and scaled delta of an
    /// op-by-op version would each stay alive until the backward pass.
    ///
    /// Shapes: x, x' [rows, in], weight [out, in], bias [out], a [rank, in], b [out, rank]
    /// -> [rows, out].
    /// Usage: `let y = try tape.linear(x, frozen: w, lowRankA: a, lowRankB: b, scale: 2)`
    public func linear(
        _ x: Variable, frozen weight: FrozenMatrix, bias: Variable? = nil,
        lowRankA a: Variable, lowRankB b: Variable, scale: Float, lowRankInput: Variable? = nil
    ) throws -> Variable {
        let xl = lowRankInput ?? x
        let inF = x.shape.last, rows = x.shape.rows, outF = weight.rows
        guard weight.columns == inF, x.shape.rank >= 1 else {
            throw TensorError.shapeMismatch(op: "linear", lhs: x.shape, rhs: [weight.rows, weight.columns])
        }
        guard xl.shape == x.shape else { throw TensorError.shapeMismatch(op: "linear low-rank input", lhs: x.shape, rhs: xl.shape) }
        guard a.shape.rank == 2, a.shape[1] == inF, b.shape.rank == 2, b.shape == [outF, a.shape[0]] else {
            throw TensorError.shapeMismatch(op: "linear low-rank", lhs: a.shape, rhs: b.shape)
        }
        if let bias, bias.shape != [outF] {
            throw TensorError.shapeMismatch(op: "linear bias", lhs: [weight.rows, weight.columns], rhs: bias.shape)
        }
        let rank = a.shape[0]
        let y = Tensor(uninitialized: Shape(x.shape.dims.dropLast() + [outF]))
        if let bias {
            for r in 0..<rows { (y.pointer + r * outF).update(from: bias.value.pointer, count: outF) }
        }
        // y [rows, out] (+)= x [rows, in] . W^T
        weight.multiply(x.value.pointer, count: rows, into: y.pointer, accumulate: bias != nil)
        // u [rows, rank] = x' [rows, in] . A^T
        let u = Tensor(uninitialized: [rows, rank])
        GEMM.run(transposeA: false, transposeB: true, m: rows, n: rank, k: inF, a: xl.value.pointer, lda: inF,
                 b: a.value.pointer, ldb: inF, beta: 0, c: u.pointer, ldc: rank)
        // y [rows, out] += scale * u [rows, rank] . B^T
        GEMM.run(transposeA: false, transposeB: true, m: rows, n: outF, k: rank, alpha: scale, a: u.pointer, lda: rank,
                 b: b.value.pointer, ldb: rank, beta: 1, c: y.pointer, ldc: outF)

        let sx = x.slot, sBias = bias?.slot
        // x' is kept (its value, or how to recompute it) only when A's gradient needs it.
        let xlValue: (() -> Tensor)? = a.requiresGrad ? xl.valueForBackward() : nil
        let sxl = xl.slot
        return output(y, op: "linear(frozen+lowRank)", inputs: [x, bias, a, b, xl]) { dy in
            // g [rows, rank] = dy [rows, out] . B
            let g = Tensor(uninitialized: [rows, rank])
            GEMM.run(transposeA: false, transposeB: false, m: rows, n: rank, k: outF, a: dy.pointer, lda: outF,
                     b: b.value.pointer, ldb: rank, beta: 0, c: g.pointer, ldc: rank)
            // dB [out, rank] += scale * dy^T [out, rows] . u [rows, rank]
            if b.requiresGrad {
                GEMM.run(transposeA: true, transposeB: false, m: outF, n: rank, k: rows, alpha: scale, a: dy.pointer, lda: outF,
                         b: u.pointer, ldb: rank, beta: 1, c: b.gradBuffer().pointer, ldc: rank)
            }
            // dA [rank, in] += scale * g^T [rank, rows] . x' [rows, in]
            if let xlValue {
                let xv = xlValue()
                GEMM.run(transposeA: true, transposeB: false, m: rank, n: inF, k: rows, alpha: scale, a: g.pointer, lda: rank,
                         b: xv.pointer, ldb: inF, beta: 1, c: a.gradBuffer().pointer, ldc: inF)
            }
            // dx' [rows, in] += scale * g [rows, rank] . A [rank, in]
            if sxl.requiresGrad {
                GEMM.run(transposeA: false, transposeB: false, m: rows, n: inF, k: rank, alpha: scale, a: g.pointer, lda: rank,
                         b: a.value.pointer, ldb: inF, beta: 1, c: sxl.buffer().pointer, ldc: inF)
            }
            // dx [rows, in] += dy [rows, out] . W
            if sx.requiresGrad {
                weight.multiplyTransposed(dy.pointer, count: rows, accumulateInto: sx.buffer().pointer)
            }
            if let sBias, sBias.requiresGrad {
                let db = sBias.buffer().pointer
                for r in 0..<rows {
                    let dyr = dy.pointer + r * outF
                    for j in 0..<outF { db[j] += dyr[j] }
                }
            }
        }
    }
}
