import CKernels
import Tensors

extension Tape {
    /// Root-mean-square normalisation over the last axis, scaled by a learned weight:
    /// y = x / sqrt(mean(x^2) + eps) * w.
    ///
    /// Shapes: x [..., d], weight [d] -> [..., d].
    /// Usage: `let h = try tape.rmsNorm(x, weight: norm, eps: 1e-5)`
    public func rmsNorm(_ x: Variable, weight: Variable, eps: Float) throws -> Variable {
        let d = x.shape.last, rows = x.shape.rows
        guard weight.shape == [d] else {
            throw TensorError.shapeMismatch(op: "rmsNorm", lhs: x.shape, rhs: weight.shape)
        }
        let y = Tensor(uninitialized: x.shape)
        let rstd = Tensor(uninitialized: [rows])
        let xp = x.value.pointer, wp = weight.value.pointer, yp = y.pointer, rp = rstd.pointer
        ThreadPool.shared.parallelFor(rows, minChunk: 16) { r in
            tc_rmsnorm_forward(xp, wp, yp, rp, r.lowerBound, r.upperBound, d, eps)
        }
        let out = output(y, op: "rmsNorm", inputs: [x, weight]) { dy in
            let rp = rstd.pointer  // keeps rstd's storage alive until the backward pass
            let dx = x.requiresGrad ? x.gradBuffer().pointer : nil
            guard weight.requiresGrad else {
                ThreadPool.shared.parallelFor(rows, minChunk: 16) { r in
                    tc_rmsnorm_backward(dy.pointer, xp, wp, rp, dx, nil, r.lowerBound, r.upperBound, d)
                }
                return
            }
            // Each worker sums its rows' weight gradient privately; the partials are added after.
            let workers = ThreadPool.shared.workers
            let partials = Tensor(zeros: [workers, d])
            let per = (rows + workers - 1) / workers
            ThreadPool.shared.forEach(workers) { w in
                let lo = min(rows, w * per), hi = min(rows, lo + per)
                if lo < hi {
                    tc_rmsnorm_backward(dy.pointer, xp, wp, rp, dx, partials.pointer + w * d, lo, hi, d)
                }
            }
            let dw = weight.gradBuffer().pointer
            for w in 0..<workers { tc_axpy(1, partials.pointer + w * d, dw, d) }
        }
        if out.requiresGrad {
            // x, weight and rstd stay alive for the backward pass anyway; y is cheap to rebuild.
            out.recompute = {
                let again = Tensor(uninitialized: x.shape)
                let scratch = Tensor(uninitialized: [rows])
                let (xp, wp, yp, sp) = (x.value.pointer, weight.value.pointer, again.pointer, scratch.pointer)
                ThreadPool.shared.parallelFor(rows, minChunk: 16) { r in
                    tc_rmsnorm_forward(xp, wp, yp, sp, r.lowerBound, r.upperBound, d, eps)
                }
                return again
            }
        }
        return out
    }
}
