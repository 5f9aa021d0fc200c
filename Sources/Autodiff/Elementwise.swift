import CKernels
import Tensors

extension Tape {
    /// a + b, same shapes (no broadcasting). Shapes: a [*], b [*] -> [*].
    ///
    /// Usage: `let h = try tape.add(x, attentionOut)`
    public func add(_ a: Variable, _ b: Variable) throws -> Variable {
        let y = try a.value.adding(b.value)
        let sa = a.slot, sb = b.slot
        return output(y, op: "add", inputs: [a, b]) { dy in
            // dy is this op's alone once the tape calls here: the first input may keep it.
            switch (sa.requiresGrad, sb.requiresGrad) {
            case (true, true):
                sb.accumulate(copying: dy)
                sa.accumulate(handingOver: dy)
            case (true, false): sa.accumulate(handingOver: dy)
            case (false, true): sb.accumulate(handingOver: dy)
            case (false, false): break
            }
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
        let sx = x.slot
        return output(y, op: "reshape", inputs: [x]) { dy in
            if sx.requiresGrad { sx.accumulate(handingOver: dy) }
        }
    }
}
