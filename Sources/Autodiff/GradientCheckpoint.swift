import Tensors

extension Tape {
    /// Runs `body` without keeping its intermediate results, and runs it again during the
    /// backward pass to get them back (gradient checkpointing, as `torch.utils.checkpoint`).
    ///
    /// Between the forward and backward passes only `x` and the output stay alive, so a stack
    /// of checkpointed blocks holds one block's activations at a time instead of all of them,
    /// for the cost of a second forward pass through each block. `body` must compute the same
    /// function both times: it may read trainable parameters (their gradients accumulate as
    /// usual) and seeded dropout, but nothing that changes between the two calls.
    ///
    /// Shapes: x [*] -> body's output.
    /// Usage: `h = try tape.checkpoint(h) { tape, x in try block(tape, x, layer: i, context: c) }`
    public func checkpoint(_ x: Variable, _ body: @escaping (Tape, Variable) throws -> Variable) throws -> Variable {
        guard isRecording else { return try body(self, x) }
        // Forward: nothing recorded, so every intermediate is freed as soon as it is used.
        let y = try body(Tape(trainingWithoutRecording: profile), Variable(x.value))
        let input = x.value, sx = x.slot, profile = self.profile
        // Recorded whatever x needs, since the parameters inside body (adapters) may.
        return output(y.value, op: Tape.checkpointOp, inputs: [], recordAlways: true) { dy in
            // Backward: the same forward again on a recording tape, then its backward pass
            // from this op's incoming gradient; parameter gradients land where they belong.
            let inner = Tape(recording: true, profile: profile)
            let xi = Variable(input, requiresGrad: sx.requiresGrad)
            let yi = try body(inner, xi)
            guard yi.requiresGrad else { return }  // nothing inside needs a gradient
            try inner.backward(yi, gradient: dy)
            if sx.requiresGrad, let dx = xi.grad { sx.accumulate(handingOver: dx) }
        }
    }

    /// The op name of checkpointed segments; their inner ops are profiled one by one, so the
    /// segment itself is not timed again.
    static let checkpointOp = "checkpoint"
}
