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
        let out = output(y, op: "swiglu", inputs: [gate, up]) { dy in
            let dg = gate.requiresGrad ? gate.gradBuffer().pointer : nil
            let du = up.requiresGrad ? up.gradBuffer().pointer : nil
            ThreadPool.shared.parallelFor(dy.count, minChunk: 1 << 14) { r in
                let o = r.lowerBound
                tc_swiglu_backward(gp + o, upp + o, dy.pointer + o, dg.map { $0 + o }, du.map { $0 + o }, r.count)
            }
        }
        if out.requiresGrad {
            // gate and up stay alive for the backward pass anyway; the product is cheap to rebuild.
            out.recompute = {
                let again = Tensor(uninitialized: gate.shape)
                let (gp, upp, ap) = (gate.value.pointer, up.value.pointer, again.pointer)
                ThreadPool.shared.parallelFor(again.count, minChunk: 1 << 14) { r in
                    tc_swiglu_forward(gp + r.lowerBound, upp + r.lowerBound, ap + r.lowerBound, r.count)
                }
                return again
            }
        }
        return out
    }
}
