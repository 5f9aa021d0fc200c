import Tensors

/// Records differentiable operations in the order they ran and replays their backward
/// functions in reverse.
///
/// An operation is recorded only when one of its inputs requires a gradient, so inference on
/// frozen weights records nothing. Gradients of intermediate results are released as soon as
/// their producer has consumed them.
///
/// Usage:
/// ```
/// let tape = Tape()
/// let y = try tape.linear(x, w)
/// let loss = try tape.sum(y)
/// try tape.backward(loss)   // w.grad now holds d loss / d w
/// ```
public final class Tape {
    /// A recorded op: its output's gradient slot (not the output itself, so the value is freed
    /// unless a backward function needs it) and its backward function.
    struct Node {
        let op: String
        let output: GradientSlot
        let backward: (Tensor) throws -> Void
    }

    private var nodes: [Node] = []

    /// False for inference: ops then never record and their outputs never require gradients,
    /// even when trainable parameters (such as adapters) take part.
    public let isRecording: Bool

    /// True on the forward passes of training, where dropout applies: every recording tape,
    /// and the non-recording first pass of a checkpointed segment (`checkpoint`).
    public let isTraining: Bool

    /// When set, every op's forward and backward wall time is added to it.
    public let profile: StepProfile?

    public init(recording: Bool = true, profile: StepProfile? = nil) {
        isRecording = recording
        isTraining = recording
        self.profile = profile
        profile?.startForward()
    }

    /// A tape that does not record but computes as training does (dropout on).
    init(trainingWithoutRecording profile: StepProfile?) {
        isRecording = false
        isTraining = true
        self.profile = profile
        profile?.startForward()
    }

    /// Number of operations recorded so far.
    public var recordedCount: Int { nodes.count }

    /// Creates the output variable of an op and records its backward function when any input
    /// requires a gradient (or always, with `recordAlways`, for ops holding parameters of
    /// their own). `backward` receives the gradient of the output.
    func output(
        _ value: Tensor, op: String, inputs: [Variable?], recordAlways: Bool = false,
        backward: @escaping (Tensor) throws -> Void
    ) -> Variable {
        let needsGrad = isRecording && (recordAlways || inputs.contains { $0?.requiresGrad == true })
        profile?.forwardFinished(op)
        let out = Variable(output: value, requiresGrad: needsGrad)
        if needsGrad { nodes.append(Node(op: op, output: out.slot, backward: backward)) }
        return out
    }

    /// Runs the backward pass from a scalar `loss`, accumulating into the `grad` of every
    /// variable that requires one, then clears the tape.
    public func backward(_ loss: Variable, seed: Float = 1) throws {
        guard loss.value.count == 1 else {
            throw TensorError.invalidShape(op: "backward", shape: loss.shape, expected: "a scalar loss")
        }
        try backward(loss, gradient: Tensor(shape: [1], scalars: [seed]))
    }

    /// Runs the backward pass from a non-scalar `output` given d loss / d output, for losses
    /// computed outside the tape from its values (sequence-level objectives).
    ///
    /// Usage: `try tape.backward(logProbs, gradient: dLossByLogProb)`
    public func backward(_ output: Variable, gradient: Tensor) throws {
        guard gradient.count == output.value.count else {
            throw TensorError.shapeMismatch(op: "backward", lhs: output.shape, rhs: gradient.shape)
        }
        guard output.requiresGrad else {
            throw TensorError.invalidArgument(
                op: "backward", message: "the loss does not depend on any variable that requires a gradient")
        }
        output.slot.accumulate(copying: gradient)
        // Each node is dropped once it has run, so the values its backward function kept
        // alive are freed as the pass moves towards the inputs.
        defer { nodes.removeAll() }
        while let node = nodes.popLast() {
            guard let g = node.output.tensor else { continue }
            if let profile, node.op != Tape.checkpointOp {
                try profile.measure("backward " + node.op) { try node.backward(g) }
            } else {
                try node.backward(g)
            }
            node.output.tensor = nil
        }
    }

    /// Forgets all recorded operations without running them.
    public func reset() { nodes.removeAll() }
}
