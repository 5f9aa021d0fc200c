import CKernels
import Tensors

/// Where a variable's gradient accumulates.
///
/// Kept apart from the variable's value so that a recorded op can reach its output's gradient
/// (and its inputs' gradients) without keeping those values alive: an intermediate result that
/// no backward function reads is freed as soon as the forward pass drops it.
public final class GradientSlot {
    public let shape: Shape
    public let requiresGrad: Bool
    /// Accumulated gradient; nil until a backward pass reaches this slot.
    public internal(set) var tensor: Tensor?

    init(shape: Shape, requiresGrad: Bool) {
        self.shape = shape
        self.requiresGrad = requiresGrad
    }

    /// Adds `gradient` (this slot's shape) into the slot. While the slot is still empty it
    /// takes `gradient` itself instead of zero-filling a buffer and adding into it, so the
    /// caller must not read or write `gradient` afterwards: pass only a tensor the caller owns
    /// alone, such as the gradient a backward function received.
    func accumulate(handingOver gradient: Tensor) {
        precondition(requiresGrad, "gradient accumulated into a variable that does not require one")
        if let g = tensor {
            tc_axpy(1, gradient.pointer, g.pointer, g.count)
        } else {
            guard let g = gradient.shape == shape ? gradient : try? gradient.reshaped(shape) else {
                preconditionFailure("gradient of \(gradient.shape) handed to a slot of \(shape)")
            }
            tensor = g
        }
    }

    /// Adds a copy of `gradient` into the slot (a plain copy while the slot is empty).
    func accumulate(copying gradient: Tensor) {
        precondition(requiresGrad, "gradient accumulated into a variable that does not require one")
        if let g = tensor {
            tc_axpy(1, gradient.pointer, g.pointer, g.count)
        } else {
            let g = Tensor(uninitialized: shape)
            g.pointer.update(from: gradient.pointer, count: g.count)
            tensor = g
        }
    }

    /// The gradient buffer, allocated as zeros on first use. Only valid when `requiresGrad`.
    func buffer() -> Tensor {
        precondition(requiresGrad, "gradient requested for a variable that does not require one")
        if let g = tensor { return g }
        let g = Tensor(zeros: shape)
        tensor = g
        return g
    }
}

/// A tensor in a differentiable computation, with a gradient buffer when it requires one.
///
/// Frozen tensors (`requiresGrad: false`) never get a gradient buffer, so a frozen base model
/// costs no gradient memory.
///
/// Usage: `let w = Variable(Tensor(zeros: [4, 4]), requiresGrad: true)`
public final class Variable {
    public let value: Tensor
    /// True for variables the caller created (parameters, inputs); false for op outputs.
    public let isLeaf: Bool
    /// The gradient's home, shared with the tape's record of the op that produced this variable.
    public let slot: GradientSlot
    /// Recomputes `value` from what the producing op keeps for its own backward pass anyway
    /// (a norm's input, an activation's operands). An op that needs this variable's value in
    /// its backward pass keeps this cheap closure instead of the value, so the value is freed
    /// with the forward pass.
    public internal(set) var recompute: (() -> Tensor)?

    /// This variable's value for a backward function: the value itself, or (when it can be
    /// recomputed) a closure that rebuilds it, so capturing the result does not keep it alive.
    func valueForBackward() -> () -> Tensor {
        if let recompute { return recompute }
        let value = self.value
        return { value }
    }

    public init(_ value: Tensor, requiresGrad: Bool = false) {
        self.value = value
        self.isLeaf = true
        self.slot = GradientSlot(shape: value.shape, requiresGrad: requiresGrad)
    }

    init(output value: Tensor, requiresGrad: Bool) {
        self.value = value
        self.isLeaf = false
        self.slot = GradientSlot(shape: value.shape, requiresGrad: requiresGrad)
    }

    public var shape: Shape { value.shape }
    public var requiresGrad: Bool { slot.requiresGrad }

    /// Accumulated gradient; nil until a backward pass reaches this variable.
    public internal(set) var grad: Tensor? {
        get { slot.tensor }
        set { slot.tensor = newValue }
    }

    /// The gradient buffer, allocated as zeros on first use. Only valid when `requiresGrad`.
    func gradBuffer() -> Tensor { slot.buffer() }

    /// The gradient buffer (zeros if no backward pass reached this variable yet), for code that
    /// writes gradients in place outside a `Tape`, such as a sum across processes. Only valid
    /// when `requiresGrad`.
    ///
    /// Usage: `p.gradientBuffer().pointer.update(from: summed, count: p.value.count)`
    public func gradientBuffer() -> Tensor { slot.buffer() }

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
