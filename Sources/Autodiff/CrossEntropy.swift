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

    /// Output-head rows the fused cross-entropy multiplies at a time; a frozen head packed in
    /// blocks (`OneDNNMatrix`) uses the same size so every chunk is whole blocks.
    public static let vocabularyChunk = 8192

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
        hidden: Variable, head: Variable, targets: [Int32], vocabChunk: Int = Tape.vocabularyChunk
    ) throws -> CrossEntropyLoss {
        let product = try FusedHead(trainable: head, hidden: hidden, vocabChunk: vocabChunk)
        let (out, m) = try fusedHeadTargets(hidden: hidden, product: product, targets: targets, perToken: false)
        return CrossEntropyLoss(loss: out, targetCount: m)
    }

    /// The same loss with a frozen output head in any storage that multiplies by row bands
    /// (Float32 or bfloat16); the head gets no gradient.
    ///
    /// Usage: `let ce = try tape.crossEntropy(hidden: h, frozenHead: bf16Head, targets: t)`
    public func crossEntropy(
        hidden: Variable, frozenHead: RowBandMatrix, targets: [Int32], vocabChunk: Int = Tape.vocabularyChunk
    ) throws -> CrossEntropyLoss {
        let product = try FusedHead(frozen: frozenHead, hidden: hidden, vocabChunk: vocabChunk)
        let (out, m) = try fusedHeadTargets(hidden: hidden, product: product, targets: targets, perToken: false)
        return CrossEntropyLoss(loss: out, targetCount: m)
    }

    /// Log-probability of each target token under the fused head, one value per position whose
    /// target is not `ignoreIndex`, in position order; the backward pass takes one upstream
    /// gradient per value. Sequence-level objectives (preference optimisation) sum these.
    ///
    /// Shapes: hidden [n, d], head [vocab, d], targets [n] -> [m] (m = targets that are set;
    /// a single 0 when none are).
    /// Usage: `let lp = try tape.targetLogProbabilities(hidden: h, head: embed, targets: t)`
    public func targetLogProbabilities(
        hidden: Variable, head: Variable, targets: [Int32], vocabChunk: Int = Tape.vocabularyChunk
    ) throws -> Variable {
        let product = try FusedHead(trainable: head, hidden: hidden, vocabChunk: vocabChunk)
        return try fusedHeadTargets(hidden: hidden, product: product, targets: targets, perToken: true).output
    }

    /// `targetLogProbabilities` with a frozen head (no head gradient).
    ///
    /// Usage: `let lp = try tape.targetLogProbabilities(hidden: h, frozenHead: bf16Head, targets: t)`
    public func targetLogProbabilities(
        hidden: Variable, frozenHead: RowBandMatrix, targets: [Int32], vocabChunk: Int = Tape.vocabularyChunk
    ) throws -> Variable {
        let product = try FusedHead(frozen: frozenHead, hidden: hidden, vocabChunk: vocabChunk)
        return try fusedHeadTargets(hidden: hidden, product: product, targets: targets, perToken: true).output
    }

    /// The head product as closures over vocabulary chunks; `head` (when trainable) also gets
    /// its gradient, which needs its Float32 values.
    private struct FusedHead {
        let vocab: Int
        let chunk: Int
        let head: Variable?
        /// (hsel [m, d], m, first column, columns, out [m, columns]): logits of one chunk.
        let logits: (UnsafePointer<Float>, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void
        /// (dlogits [m, columns], m, first column, columns, dh [m, d]): dh += dlogits . head chunk.
        let inputGradient: (UnsafePointer<Float>, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void

        init(trainable head: Variable, hidden: Variable, vocabChunk: Int) throws {
            guard head.shape.rank == 2, hidden.shape.last == head.shape[1] else {
                throw TensorError.shapeMismatch(op: "crossEntropy", lhs: hidden.shape, rhs: head.shape)
            }
            guard vocabChunk > 0 else {
                throw TensorError.invalidArgument(op: "crossEntropy", message: "vocabChunk must be positive")
            }
            let d = head.shape[1], headp = head.value.pointer
            vocab = head.shape[0]; chunk = min(vocabChunk, vocab); self.head = head
            logits = { hsel, m, c0, cols, out in
                // logits chunk [m, cols] = hsel [m, d] . head[c0 ..< c0+cols]^T
                GEMM.run(transposeA: false, transposeB: true, m: m, n: cols, k: d, a: hsel, lda: d,
                         b: headp + c0 * d, ldb: d, c: out, ldc: cols)
            }
            inputGradient = { dlogits, m, c0, cols, dh in
                // dh [m, d] += dlogits [m, cols] . head chunk [cols, d]
                GEMM.run(transposeA: false, transposeB: false, m: m, n: d, k: cols, a: dlogits, lda: cols,
                         b: headp + c0 * d, ldb: d, beta: 1, c: dh, ldc: d)
            }
        }

        init(frozen head: RowBandMatrix, hidden: Variable, vocabChunk: Int) throws {
            guard hidden.shape.last == head.columns else {
                throw TensorError.shapeMismatch(op: "crossEntropy", lhs: hidden.shape, rhs: [head.rows, head.columns])
            }
            guard vocabChunk > 0 else {
                throw TensorError.invalidArgument(op: "crossEntropy", message: "vocabChunk must be positive")
            }
            // Chunks start at multiples of the chunk size; keep them multiples of 16 for packed heads.
            vocab = head.rows; chunk = min(max(16, vocabChunk / 16 * 16), head.rows); self.head = nil
            logits = { hsel, m, c0, cols, out in head.multiply(hsel, count: m, rows: c0..<(c0 + cols), into: out) }
            inputGradient = { dlogits, m, c0, cols, dh in
                head.multiplyTransposed(dlogits, count: m, rows: c0..<(c0 + cols), accumulateInto: dh)
            }
        }
    }

    /// The chunked computation behind both reductions: the scalar mean negative log-likelihood
    /// (`perToken` false) or the vector of target log-probabilities (`perToken` true).
    private func fusedHeadTargets(
        hidden: Variable, product: FusedHead, targets: [Int32], perToken: Bool
    ) throws -> (output: Variable, targetCount: Int) {
        guard targets.count == hidden.shape.rows else {
            throw TensorError.shapeMismatch(op: "crossEntropy targets", lhs: hidden.shape, rhs: [targets.count])
        }
        let d = hidden.shape.last, vocab = product.vocab, chunk = product.chunk
        let computeLogits = product.logits, inputGradient = product.inputGradient, head = product.head
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
        let value: Tensor
        if perToken {
            // log p(target) = logit(target) - lse
            value = Tensor(zeros: [max(m, 1)])
            for r in 0..<m {
                lse.pointer[r] = rowMax.pointer[r] + log(rowSum.pointer[r])
                value.pointer[r] = targetLogit[r] - lse.pointer[r]
            }
        } else {
            var total = 0.0
            for r in 0..<m {
                lse.pointer[r] = rowMax.pointer[r] + log(rowSum.pointer[r])
                total += Double(lse.pointer[r] - targetLogit[r])
            }
            value = try Tensor(shape: [1], scalars: [m > 0 ? Float(total / Double(m)) : 0])
        }
        let localTargets = [Int32](repeating: 0, count: max(m, 1))
        logits = nil  // the backward pass recomputes each chunk into its own buffer

        let hiddenSlot = hidden.slot
        let out = output(value, op: perToken ? "targetLogProbabilities" : "crossEntropy", inputs: [hidden, head]) { dOut in
            guard m > 0 else { return }
            // d nll / d logits = softmax - onehot; the mean scales it by dOut/m, and a
            // log-probability (= -nll) takes each row's upstream gradient with the sign flipped.
            let scale = perToken ? 0 : dOut[flat: 0] / Float(m)
            let rowScales: [Float]? = perToken ? (0..<m).map { -dOut.pointer[$0] } : nil
            let dh = Tensor(zeros: [m, d])
            let logits = Tensor(uninitialized: [m, chunk])
            var local = localTargets
            for c0 in stride(from: 0, to: vocab, by: chunk) {
                let cols = min(chunk, vocab - c0)
                computeLogits(hsel.pointer, m, c0, cols, logits.pointer)
                for r in 0..<m { local[r] = selectedTargets[r] - Int32(c0) }
                // logits := (softmax - onehot) * scale, which is d output / d logits
                local.withUnsafeBufferPointer { lt in
                    ThreadPool.shared.parallelFor(m, minChunk: 8) { r in
                        if let rowScales {
                            rowScales.withUnsafeBufferPointer { rs in
                                tc_ce_gradient_chunk(
                                    logits.pointer + r.lowerBound * cols, r.count, cols, cols,
                                    lse.pointer + r.lowerBound, lt.baseAddress! + r.lowerBound, 0, rs.baseAddress! + r.lowerBound)
                            }
                        } else {
                            tc_ce_gradient_chunk(
                                logits.pointer + r.lowerBound * cols, r.count, cols, cols,
                                lse.pointer + r.lowerBound, lt.baseAddress! + r.lowerBound, scale, nil)
                        }
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
        return (out, m)
    }
}
