import CKernels
import Tensors

extension Tape {
    /// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p).
    /// The mask is a pure function of (seed, element index), so the same seed reproduces it and
    /// the backward pass regenerates it instead of storing it.
    ///
    /// Shapes: x [*] -> [*].
    /// Usage: `let h = try tape.dropout(x, probability: 0.05, seed: stepSeed &+ layer)`
    public func dropout(_ x: Variable, probability p: Float, seed: UInt64) throws -> Variable {
        guard p >= 0, p < 1 else {
            throw TensorError.invalidArgument(op: "dropout", message: "probability \(p) outside [0, 1)")
        }
        if p == 0 { return x }
        let y = Tensor(uninitialized: x.shape)
        let xp = x.value.pointer, yp = y.pointer
        ThreadPool.shared.parallelFor(y.count, minChunk: 1 << 14) { r in
            tc_dropout(xp + r.lowerBound, yp + r.lowerBound, r.count, UInt64(r.lowerBound), seed, p, 0)
        }
        let sx = x.slot
        return output(y, op: "dropout", inputs: [x]) { dy in
            guard sx.requiresGrad else { return }
            let dx = sx.buffer().pointer
            ThreadPool.shared.parallelFor(dy.count, minChunk: 1 << 14) { r in
                tc_dropout(dy.pointer + r.lowerBound, dx + r.lowerBound, r.count, UInt64(r.lowerBound), seed, p, 1)
            }
        }
    }
}
