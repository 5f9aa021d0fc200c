import Tensors

/// A tensor in a differentiable computation, with a gradient buffer when it requires one.
///
/// Frozen tensors (`requiresGrad: false`) never get a gradient buffer, so a frozen base model
/// costs no gradient memory.
///
/// Usage: `let w = Variable(Tensor(zeros: [4, 4]), requiresGrad: true)`
public final class Variable {
    public let value: Tensor
    public let requiresGrad: Bool
    /// True for variables the caller created (parameters, inputs); false for op outputs.
    public let isLeaf: Bool
    /// Accumulated gradient; nil until a backward pass reaches this variable.
    public internal(set) var grad: Tensor?

    public init(_ value: Tensor, requiresGrad: Bool = false) {
        self.value = value
        self.requiresGrad = requiresGrad
        self.isLeaf = true
    }

    init(output value: Tensor, requiresGrad: Bool) {
        self.value = value
        self.requiresGrad = requiresGrad
        self.isLeaf = false
    }

    public var shape: Shape { value.shape }

    /// The gradient buffer, allocated as zeros on first use. Only valid when `requiresGrad`.
    func gradBuffer() -> Tensor {
        precondition(requiresGrad, "gradient requested for a variable that does not require one")
        if let g = grad { return g }
        let g = Tensor(zeros: value.shape)
        grad = g
        return g
    }

    /// Drops the gradient so the next backward pass starts from zero.
    public func zeroGrad() { grad = nil }

    /// Adds `gradient` into this variable's gradient buffer, as a backward pass would; for
    /// optimiser tests and for callers that compute gradients outside a `Tape`.
    ///
    /// Usage: `try w.accumulateGradient(Tensor(shape: w.shape, repeating: 0.5))`
    public func accumulateGradient(_ gradient: Tensor) throws {
        guard requiresGrad else {
            throw TensorError.invalidArgument(
                op: "accumulateGradient", message: "the variable does not require a gradient")
        }
        guard gradient.shape == value.shape else {
            throw TensorError.shapeMismatch(op: "accumulateGradient", lhs: value.shape, rhs: gradient.shape)
        }
        let buffer = gradBuffer()
        for i in 0..<buffer.count { buffer[flat: i] += gradient[flat: i] }
    }
}
