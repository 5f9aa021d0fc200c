import Autodiff
import CKernels
import Tensors

/// Global-norm gradient clipping, as `torch.nn.utils.clip_grad_norm_(parameters, maxNorm)`.
public enum GradientClipping {
    /// Scales every gradient by `maxNorm / (norm + 1e-6)` when that is below 1, where `norm`
    /// is the L2 norm of all gradients together; returns the norm before clipping.
    ///
    /// Parameters without a gradient are ignored. A non-finite norm (an overflowed loss) leaves
    /// the gradients untouched and is returned so the caller can skip the step; torch would
    /// instead spread the NaN into every gradient.
    ///
    /// Usage: `let norm = GradientClipping.clipGlobalNorm(adapter.parameters, maxNorm: 1.0)`
    @discardableResult
    public static func clipGlobalNorm(_ parameters: [Variable], maxNorm: Double) -> Double {
        let norm = globalNorm(parameters)
        guard norm.isFinite, maxNorm > 0 else { return norm }
        let coefficient = maxNorm / (norm + 1e-6)
        if coefficient < 1 {
            for grad in parameters.compactMap(\.grad) {
                tc_scale(grad.pointer, Float(coefficient), grad.pointer, grad.count)
            }
        }
        return norm
    }

    /// The L2 norm of all gradients together (sums of squares in double).
    public static func globalNorm(_ parameters: [Variable]) -> Double {
        var sumOfSquares = 0.0
        for grad in parameters.compactMap(\.grad) { sumOfSquares += tc_sum_squares(grad.pointer, grad.count) }
        return sumOfSquares.squareRoot()
    }
}
