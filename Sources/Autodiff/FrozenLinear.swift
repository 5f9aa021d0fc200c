import Tensors

extension Tape {
    /// y = x W^T + b with a frozen weight (dense or quantised): only the input (and a trainable
    /// bias) receive gradients, so the weight needs no gradient buffer.
    ///
    /// Shapes: x [..., in], weight [out, in], bias [out] -> [..., out].
    /// Usage: `let q = try tape.linear(x, frozen: layer.qWeight)`
    public func linear(_ x: Variable, frozen weight: FrozenMatrix, bias: Variable? = nil) throws -> Variable {
        let inF = x.shape.last, rows = x.shape.rows, outF = weight.rows
        guard weight.columns == inF, x.shape.rank >= 1 else {
            throw TensorError.shapeMismatch(op: "linear", lhs: x.shape, rhs: [weight.rows, weight.columns])
        }
        if let b = bias, b.shape != [outF] {
            throw TensorError.shapeMismatch(op: "linear bias", lhs: [weight.rows, weight.columns], rhs: b.shape)
        }
        let y = Tensor(uninitialized: Shape(x.shape.dims.dropLast() + [outF]))
        if let b = bias {
            for r in 0..<rows { (y.pointer + r * outF).update(from: b.value.pointer, count: outF) }
        }
        // y [rows, out] (+)= x [rows, in] . W^T
        weight.multiply(x.value.pointer, count: rows, into: y.pointer, accumulate: bias != nil)
        let sx = x.slot, sb = bias?.slot
        return output(y, op: "linear(frozen)", inputs: [x, bias]) { dy in
            // dx [rows, in] += dy [rows, out] . W
            if sx.requiresGrad { weight.multiplyTransposed(dy.pointer, count: rows, accumulateInto: sx.buffer().pointer) }
            if let sb, sb.requiresGrad {
                let db = sb.buffer().pointer
                for r in 0..<rows {
                    let dyr = dy.pointer + r * outF
                    for j in 0..<outF { db[j] += dyr[j] }
                }
            }
        }
    }
}
