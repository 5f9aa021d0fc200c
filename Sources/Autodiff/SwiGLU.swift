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
            let sg = gate.slot, su = up.slot
            // Usually neither input has a gradient yet: then up's gradient is written over dy
            // (this function owns it) and gate's into a buffer that is not zero-filled first,
            // instead of zero-filling two buffers and adding into them.
            if su.requiresGrad, su.tensor == nil, sg !== su {
                let fresh = sg.requiresGrad && sg.tensor == nil
                let dg: Tensor? = sg.requiresGrad ? (fresh ? Tensor(uninitialized: sg.shape) : sg.buffer()) : nil
                ThreadPool.shared.parallelFor(dy.count, minChunk: 1 << 14) { r in
                    let o = r.lowerBound
                    tc_swiglu_backward_in_place(gp + o, upp + o, dy.pointer + o, dg.map { $0.pointer + o },
                                                fresh ? 0 : 1, r.count)
                }
                su.accumulate(handingOver: dy)
                if fresh, let dg { sg.accumulate(handingOver: dg) }
                return
            }
            let dg = sg.requiresGrad ? sg.buffer().pointer : nil
            let du = su.requiresGrad ? su.buffer().pointer : nil
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
