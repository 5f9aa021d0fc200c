import CKernels
import Tensors

/// Which dimensions of a head rotary embedding rotates together.
public enum RotaryConvention: String, Sendable, CaseIterable {
    /// Pairs (2i, 2i+1): the layout of GGUF files converted from Llama checkpoints (llama.cpp's
    /// "normal" RoPE), whose q/k rows are permuted relative to Hugging Face.
    case interleaved
    /// Pairs (i, i + headDim/2): Hugging Face's rotate_half (and llama.cpp's NeoX mode).
    case halfRotation
}

extension Tape {
    /// Rotary position embedding: rotates each pair of a head's dimensions by position * freq.
    ///
    /// Shapes: x [tokens, heads * headDim] (or [tokens, heads, headDim]), positions [tokens]
    /// -> same as x. The backward pass is the inverse rotation.
    ///
    /// `inPlace` rotates x's own buffer, for a projection output that nothing else reads (q and
    /// k straight out of their projections): the output shares x's storage, and the backward
    /// pass rotates the incoming gradient in place and hands it to x, so neither pass allocates
    /// or zero-fills a buffer. x's value holds the rotated one afterwards.
    /// Usage: `let q = try tape.rotary(q, positions: layout.positions, headDim: 64, base: 1e5, convention: .halfRotation)`
    public func rotary(
        _ x: Variable, positions: [Int32], headDim: Int, base: Float, convention: RotaryConvention,
        inPlace: Bool = false
    ) throws -> Variable {
        let tokens = x.shape.rank == 3 ? x.shape[0] : x.shape.rows
        let width = x.shape.count / max(tokens, 1)
        guard headDim > 0, headDim % 2 == 0, headDim <= 1024, width % headDim == 0 else {
            throw TensorError.invalidShape(
                op: "rotary", shape: x.shape, expected: "last axis a multiple of an even headDim \(headDim)")
        }
        guard positions.count == tokens else {
            throw TensorError.shapeMismatch(op: "rotary positions", lhs: x.shape, rhs: [positions.count])
        }
        let heads = width / headDim
        let interleaved: Int32 = convention == .interleaved ? 1 : 0
        // tc_rope allows y to alias x when it writes (does not accumulate).
        let y = inPlace ? x.value : Tensor(uninitialized: x.shape)
        let xp = x.value.pointer, yp = y.pointer
        positions.withUnsafeBufferPointer { pos in
            ThreadPool.shared.parallelFor(tokens, minChunk: 32) { r in
                tc_rope(xp, yp, pos.baseAddress, r.lowerBound, r.upperBound, heads, headDim, base,
                        interleaved, 1, 0)
            }
        }
        let sx = x.slot
        return output(y, op: "rotary", inputs: [x]) { dy in
            guard sx.requiresGrad else { return }
            // In place, dy (this op's alone) is rotated back where it is and handed over;
            // otherwise the rotation is added into x's gradient buffer.
            let dx = inPlace ? dy.pointer : sx.buffer().pointer
            positions.withUnsafeBufferPointer { pos in
                ThreadPool.shared.parallelFor(tokens, minChunk: 32) { r in
                    tc_rope(dy.pointer, dx, pos.baseAddress, r.lowerBound, r.upperBound, heads,
                            headDim, base, interleaved, -1, inPlace ? 0 : 1)
                }
            }
            if inPlace { sx.accumulate(handingOver: dy) }
        }
    }
}
