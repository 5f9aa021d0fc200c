import CKernels
import Tensors

extension Tape {
    /// a + b, same shapes (no broadcasting). Shapes: a [*], b [*] -> [*].
    ///
    /// Usage: `let h = try tape.add(x, attentionOut)`
    public func add(_ a: Variable, _ b: Variable) throws -> Variable {
        let y = try a.value.adding(b.value)
        let n = y.count, sa = a.slot, sb = b.slot
        return output(y, op: "add", inputs: [a, b]) { dy in
            if sa.requiresGrad { tc_axpy(1, dy.pointer, sa.buffer().pointer, n) }
            if sb.requiresGrad { tc_axpy(1, dy.pointer, sb.buffer().pointer, n) }
        }
    }

    /// a * b elementwise, same shapes. Shapes: a [*], b [*] -> [*].
    ///
    /// Usage: `let y = try tape.mul(x, mask)`
    public func mul(_ a: Variable, _ b: Variable) throws -> Variable {
        let y = try a.value.multiplying(b.value)
        let n = y.count
        return output(y, op: "mul", inputs: [a, b]) { dy in
            // da += dy * b, db += dy * a
            if a.requiresGrad { tc_mul_accumulate(dy.pointer, b.value.pointer, a.gradBuffer().pointer, n) }
            if b.requiresGrad { tc_mul_accumulate(dy.pointer, a.value.pointer, b.gradBuffer().pointer, n) }
        }
    }

    /// s * x for a constant scalar s. Shapes: x [*] -> [*].
    ///
    /// Usage: `let y = try tape.scale(x, by: 0.5)`
    public func scale(_ x: Variable, by s: Float) throws -> Variable {
        let y = x.value.scaled(by: s)
        let n = y.count, sx = x.slot
        return output(y, op: "scale", inputs: [x]) { dy in
            if sx.requiresGrad { tc_axpy(s, dy.pointer, sx.buffer().pointer, n) }
        }
    }

    /// Sum of all elements. Shapes: x [*] -> [1].
    ///
    /// Usage: `let loss = try tape.sum(y)`
    public func sum(_ x: Variable) throws -> Variable {
        let y = try Tensor(shape: [1], scalars: [Float(x.value.sum())])
        let n = x.value.count, sx = x.slot
        return output(y, op: "sum", inputs: [x]) { dy in
            if sx.requiresGrad {
                let g = dy[flat: 0]
                let dx = sx.buffer().pointer
                for i in 0..<n { dx[i] += g }
            }
        }
    }

    /// The same elements with another shape; a view, no copy. Shapes: x [*] -> shape.
    ///
    /// Usage: `let heads = try tape.reshape(q, to: [tokens, heads, headDim])`
    public func reshape(_ x: Variable, to shape: Shape) throws -> Variable {
        let y = try x.value.reshaped(shape)
        let n = y.count, sx = x.slot
        return output(y, op: "reshape", inputs: [x]) { dy in
            if sx.requiresGrad { tc_axpy(1, dy.pointer, sx.buffer().pointer, n) }
        }
    }
}
