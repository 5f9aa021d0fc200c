import CKernels
import Tensors

extension Tape {
    /// The gated activation of Llama's MLP: silu(gate) * up.
    ///
    /// Shapes: gate [*], up [*] -> [*].
    /// Usage: `let h = try tape.swiglu(gate: gateProj, up: upProj)`
    public func swiglu(gate: Variable, up: Variable) throws -> Variable {
        guard gate.shape == up.shape else {
            throw TensorError.shapeMismatch(op: "swiglu", lhs: gate.shape, rhs: up.shape)
        }
        let y = Tensor(uninitialized: gate.shape)
        let gp = gate.value.pointer, upp = up.value.pointer, yp = y.pointer
        ThreadPool.shared.parallelFor(y.count, minChunk: 1 << 14) { r in
            tc_swiglu_forward(gp + r.lowerBound, upp + r.lowerBound, yp + r.lowerBound, r.count)
        }
        return output(y, op: "swiglu", inputs: [gate, up]) { dy in
            let dg = gate.requiresGrad ? gate.gradBuffer().pointer : nil
            let du = up.requiresGrad ? up.gradBuffer().pointer : nil
            ThreadPool.shared.parallelFor(dy.count, minChunk: 1 << 14) { r in
                let o = r.lowerBound
                tc_swiglu_backward(gp + o, upp + o, dy.pointer + o, dg.map { $0 + o }, du.map { $0 + o }, r.count)
            }
        }
    }
}
