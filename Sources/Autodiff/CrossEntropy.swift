import CKernels
import Foundation
import Tensors

/// The result of `Tape.crossEntropy`: the mean loss over target positions and how many there were.
public struct CrossEntropyLoss {
    /// Scalar mean negative log-likelihood over positions that carry a target (0 when none do).
    public let loss: Variable
    /// Number of positions that carried a target.
    public let targetCount: Int
}

extension Tape {
    /// Marks a position without a target in `crossEntropy`'s targets.
    public static let ignoreIndex: Int32 = -1

    /// Next-token cross-entropy fused with the output head.
    ///
    /// Logits are computed only for rows whose target is not `ignoreIndex`, one vocabulary chunk
    /// at a time with a running log-sum-exp, so the [tokens, vocab] matrix never exists. The
    /// backward pass recomputes each chunk's logits and turns them into gradients in place.
    ///
    /// Shapes: hidden [n, d], head [vocab, d] (an output projection or tied embedding),
    /// targets [n] -> scalar mean loss.
    /// Usage: `let ce = try tape.crossEntropy(hidden: h, head: embed, targets: t)`
    public func crossEntropy(
        hidden: Variable, head: Variable, targets: [Int32], vocabChunk: Int = 8192
    ) throws -> CrossEntropyLoss {
        guard head.shape.rank == 2, hidden.shape.last == head.shape[1] else {
            throw TensorError.shapeMismatch(op: "crossEntropy", lhs: hidden.shape, rhs: head.shape)
        }
        let d = head.shape[1], headp = head.value.pointer
        return try crossEntropy(
            hidden: hidden, vocab: head.shape[0], targets: targets, vocabChunk: vocabChunk, head: head,
            logits: { hsel, m, c0, cols, out in
                // logits chunk [m, cols] = hsel [m, d] . head[c0 ..< c0+cols]^T
                GEMM.run(transposeA: false, transposeB: true, m: m, n: cols, k: d, a: hsel, lda: d,
                         b: headp + c0 * d, ldb: d, c: out, ldc: cols)
            },
            inputGradient: { dlogits, m, c0, cols, dh in
                // dh [m, d] += dlogits [m, cols] . head chunk [cols, d]
                GEMM.run(transposeA: false, transposeB: false, m: m, n: d, k: cols, a: dlogits, lda: cols,
                         b: headp + c0 * d, ldb: d, beta: 1, c: dh, ldc: d)
            })
    }

    /// The same loss with a frozen output head in any storage that multiplies by row bands
    /// (Float32 or bfloat16); the head gets no gradient.
    ///
    /// Usage: `let ce = try tape.crossEntropy(hidden: h, frozenHead: bf16Head, targets: t)`
    public func crossEntropy(
        hidden: Variable, frozenHead: RowBandMatrix, targets: [Int32], vocabChunk: Int = 8192
    ) throws -> CrossEntropyLoss {
        guard hidden.shape.last == frozenHead.columns else {
            throw TensorError.shapeMismatch(op: "crossEntropy", lhs: hidden.shape, rhs: [frozenHead.rows, frozenHead.columns])
        }
        // Chunks start at multiples of the chunk size; keep them multiples of 16 for packed heads.
        let chunk = max(16, vocabChunk / 16 * 16)
        return try crossEntropy(
            hidden: hidden, vocab: frozenHead.rows, targets: targets, vocabChunk: chunk, head: nil,
            logits: { hsel, m, c0, cols, out in frozenHead.multiply(hsel, count: m, rows: c0..<(c0 + cols), into: out) },
            inputGradient: { dlogits, m, c0, cols, dh in
                frozenHead.multiplyTransposed(dlogits, count: m, rows: c0..<(c0 + cols), accumulateInto: dh)
            })
    }

    /// The chunked loss over head products given as closures; `head` (when trainable) also gets
    /// its gradient, which needs its Float32 values.
    private func crossEntropy(
        hidden: Variable, vocab: Int, targets: [Int32], vocabChunk: Int, head: Variable?,
        logits computeLogits: @escaping (UnsafePointer<Float>, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void,
        inputGradient: @escaping (UnsafePointer<Float>, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void
    ) throws -> CrossEntropyLoss {
        guard targets.count == hidden.shape.rows else {
            throw TensorError.shapeMismatch(op: "crossEntropy targets", lhs: hidden.shape, rhs: [targets.count])
        }
        guard vocabChunk > 0 else {
            throw TensorError.invalidArgument(op: "crossEntropy", message: "vocabChunk must be positive")
        }
        let d = hidden.shape.last
        if let bad = targets.first(where: { $0 != Tape.ignoreIndex && ($0 < 0 || Int($0) >= vocab) }) {
            throw TensorError.invalidArgument(
                op: "crossEntropy", message: "target id \(bad) outside vocabulary of \(vocab)")
        }
        let selected = targets.indices.filter { targets[$0] != Tape.ignoreIndex }
        let m = selected.count
        let selectedTargets = selected.map { targets[$0] }

        // hsel [m, d]: the hidden rows that carry a target
        let hsel = Tensor(uninitialized: [max(m, 1), d])
        for (r, row) in selected.enumerated() {
            (hsel.pointer + r * d).update(from: hidden.value.pointer + row * d, count: d)
        }
        let chunk = min(vocabChunk, vocab)
        var logits: Tensor? = Tensor(uninitialized: [max(m, 1), chunk])
        let rowMax = Tensor(shape: [max(m, 1)], repeating: -.infinity)
        let rowSum = Tensor(zeros: [max(m, 1)])
        var targetLogit = [Float](repeating: 0, count: m)
        if m > 0, let logits {
            for c0 in stride(from: 0, to: vocab, by: chunk) {
                let cols = min(chunk, vocab - c0)
                computeLogits(hsel.pointer, m, c0, cols, logits.pointer)
                ThreadPool.shared.parallelFor(m, minChunk: 8) { r in
                    tc_ce_logsumexp_update(
                        logits.pointer + r.lowerBound * cols, r.count, cols, cols,
                        rowMax.pointer + r.lowerBound, rowSum.pointer + r.lowerBound)
                }
                for r in 0..<m {
                    let t = Int(selectedTargets[r]) - c0
                    if t >= 0 && t < cols { targetLogit[r] = logits.pointer[r * cols + t] }
                }
            }
        }
        let lse = Tensor(uninitialized: [max(m, 1)])
        var total = 0.0
        for r in 0..<m {
            lse.pointer[r] = rowMax.pointer[r] + log(rowSum.pointer[r])
            total += Double(lse.pointer[r] - targetLogit[r])
        }
        let meanLoss = m > 0 ? Float(total / Double(m)) : 0
        let loss = try Tensor(shape: [1], scalars: [meanLoss])
        let localTargets = [Int32](repeating: 0, count: max(m, 1))
        logits = nil  // the backward pass recomputes each chunk into its own buffer

        let hiddenSlot = hidden.slot
        let out = output(loss, op: "crossEntropy", inputs: [hidden, head]) { dLoss in
            guard m > 0 else { return }
            let scale = dLoss[flat: 0] / Float(m)
            let dh = Tensor(zeros: [m, d])
            let logits = Tensor(uninitialized: [m, chunk])
            var local = localTargets
            for c0 in stride(from: 0, to: vocab, by: chunk) {
                let cols = min(chunk, vocab - c0)
                computeLogits(hsel.pointer, m, c0, cols, logits.pointer)
                for r in 0..<m { local[r] = selectedTargets[r] - Int32(c0) }
                // logits := (softmax - onehot) * scale, which is d loss / d logits
                local.withUnsafeBufferPointer { lt in
                    ThreadPool.shared.parallelFor(m, minChunk: 8) { r in
                        tc_ce_gradient_chunk(
                            logits.pointer + r.lowerBound * cols, r.count, cols, cols,
                            lse.pointer + r.lowerBound, lt.baseAddress! + r.lowerBound, scale)
                    }
                }
                if hiddenSlot.requiresGrad { inputGradient(logits.pointer, m, c0, cols, dh.pointer) }
                // dhead chunk [cols, d] += dlogits^T [cols, m] . hsel [m, d]
                if let head, head.requiresGrad {
                    GEMM.run(
                        transposeA: true, transposeB: false, m: cols, n: d, k: m,
                        a: logits.pointer, lda: cols, b: hsel.pointer, ldb: d, beta: 1,
                        c: head.gradBuffer().pointer + c0 * d, ldc: d)
                }
            }
            if hiddenSlot.requiresGrad {
                let dhidden = hiddenSlot.buffer().pointer
                for (r, row) in selected.enumerated() { tc_axpy(1, dh.pointer + r * d, dhidden + row * d, d) }
            }
        }
        return CrossEntropyLoss(loss: out, targetCount: m)
    }
}
