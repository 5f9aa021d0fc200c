import Autodiff
import Foundation
import Tensors
import XCTest

/// Forward results against plain reference computations, and the contracts of each op.
final class OpBehaviourTests: XCTestCase {
    var rng = TestRNG(seed: 2)

    func testFrozenWeightsGetNoGradientBuffer() throws {
        let x = rng.variable([3, 4]), frozen = rng.variable([2, 4], requiresGrad: false)
        let tape = Tape()
        try tape.backward(try tape.sum(try tape.linear(x, frozen)))
        XCTAssertNil(frozen.grad)
        XCTAssertNotNil(x.grad)
    }

    func testLowRankLinearEqualsTheOpByOpComposition() throws {
        let w = try DenseMatrix(rng.tensor([6, 5]))
        let x1 = rng.variable([4, 5]), a1 = rng.variable([2, 5]), b1 = rng.variable([6, 2])
        let x2 = Variable(x1.value.copy(), requiresGrad: true), a2 = Variable(a1.value.copy(), requiresGrad: true)
        let b2 = Variable(b1.value.copy(), requiresGrad: true)
        let fusedTape = Tape(), plainTape = Tape()
        let fused = try fusedTape.linear(x1, frozen: w, lowRankA: a1, lowRankB: b1, scale: 2)
        let plain = try plainTape.add(try plainTape.linear(x2, frozen: w),
                                      try plainTape.scale(try plainTape.linear(try plainTape.linear(x2, a2), b2), by: 2))
        XCTAssertEqual(fusedTape.recordedCount, 1)
        for i in 0..<fused.value.count { XCTAssertEqual(fused.value[flat: i], plain.value[flat: i], accuracy: 1e-5) }
        try fusedTape.backward(try fusedTape.sum(fused))
        try plainTape.backward(try plainTape.sum(plain))
        for (p, q) in [(x1, x2), (a1, a2), (b1, b2)] {
            let g1 = try XCTUnwrap(p.grad), g2 = try XCTUnwrap(q.grad)
            for i in 0..<g1.count { XCTAssertEqual(g1[flat: i], g2[flat: i], accuracy: 1e-4) }
        }
    }

    func testTapeDoesNotKeepValuesNoBackwardFunctionReads() throws {
        let x = rng.variable([3, 4])
        let tape = Tape()
        weak var freed: TensorStorage?
        var sum: Variable
        do {
            let doubled = try tape.scale(x, by: 2)  // scale's backward reads no values
            freed = doubled.value.storage
            sum = try tape.sum(try tape.add(doubled, x))
        }
        XCTAssertNil(freed, "the scaled intermediate should be freed once the forward pass drops it")
        try tape.backward(sum)
        for i in 0..<x.value.count { XCTAssertEqual(x.grad?[flat: i], 3) }
    }

    func testNormOutputFeedingALowRankOpIsRebuiltInsteadOfKept() throws {
        let x = rng.variable([4, 6]), norm = Variable(rng.tensor([6]))
        let a = rng.variable([2, 6]), b = rng.variable([3, 2])
        let w = try DenseMatrix(rng.tensor([3, 6]))
        let tape = Tape()
        weak var freed: TensorStorage?
        var loss: Variable
        do {
            let n = try tape.rmsNorm(x, weight: norm, eps: 1e-5)
            freed = n.value.storage
            loss = try tape.sum(try tape.linear(n, frozen: w, lowRankA: a, lowRankB: b, scale: 1))
        }
        XCTAssertNil(freed, "the norm's output should not outlive the forward pass")
        try tape.backward(loss)
        XCTAssertNotNil(a.grad)
    }

    func testOpsOnFrozenInputsRecordNothing() throws {
        let x = rng.variable([3, 4], requiresGrad: false), w = rng.variable([2, 4], requiresGrad: false)
        let tape = Tape()
        _ = try tape.linear(x, w)
        XCTAssertEqual(tape.recordedCount, 0)
    }

    func testShapeMismatchNamesTheOpAndBothShapes() {
        let tape = Tape()
        let x = rng.variable([3, 4]), w = rng.variable([2, 5])
        XCTAssertThrowsError(try tape.linear(x, w)) { error in
            XCTAssertEqual("\(error)", "linear: shape mismatch between [3, 4] and [2, 5]")
        }
        XCTAssertThrowsError(try tape.add(x, rng.variable([4, 3]))) { error in
            XCTAssertEqual(error as? TensorError, .shapeMismatch(op: "add", lhs: [3, 4], rhs: [4, 3]))
        }
        XCTAssertThrowsError(try tape.rmsNorm(x, weight: rng.variable([3]), eps: 1e-5)) { error in
            XCTAssertEqual(error as? TensorError, .shapeMismatch(op: "rmsNorm", lhs: [3, 4], rhs: [3]))
        }
    }

    func testRMSNormMatchesDefinition() throws {
        let x = rng.variable([2, 5]), w = rng.variable([5])
        let y = try Tape().rmsNorm(x, weight: w, eps: 1e-5)
        for r in 0..<2 {
            var ms: Double = 0
            for i in 0..<5 { ms += Double(x.value[r, i] * x.value[r, i]) / 5 }
            for i in 0..<5 {
                let expected = Double(x.value[r, i]) / (ms + 1e-5).squareRoot() * Double(w.value[i])
                XCTAssertEqual(Double(y.value[r, i]), expected, accuracy: 1e-5)
            }
        }
    }

    /// GGUF stores q/k rows permuted so that interleaved pairs (2i, 2i+1) hold what Hugging Face
    /// keeps at (i, i + d/2); both conventions must give the same result under that permutation.
    func testInterleavedRotaryEqualsHalfRotationUnderThePermutation() throws {
        let d = 8, heads = 2, tokens = 3
        let x = rng.variable([tokens, heads * d], requiresGrad: false)
        let positions: [Int32] = [0, 5, 11]
        // interleaved index 2i <- half index i, 2i+1 <- i + d/2
        let permuted = Tensor(uninitialized: x.shape)
        for t in 0..<tokens {
            for h in 0..<heads {
                for i in 0..<(d / 2) {
                    permuted[t, h * d + 2 * i] = x.value[t, h * d + i]
                    permuted[t, h * d + 2 * i + 1] = x.value[t, h * d + i + d / 2]
                }
            }
        }
        let tape = Tape()
        let half = try tape.rotary(x, positions: positions, headDim: d, base: 10_000, convention: .halfRotation)
        let inter = try tape.rotary(Variable(permuted), positions: positions, headDim: d, base: 10_000, convention: .interleaved)
        for t in 0..<tokens {
            for h in 0..<heads {
                for i in 0..<(d / 2) {
                    XCTAssertEqual(inter.value[t, h * d + 2 * i], half.value[t, h * d + i], accuracy: 1e-6)
                    XCTAssertEqual(inter.value[t, h * d + 2 * i + 1], half.value[t, h * d + i + d / 2], accuracy: 1e-6)
                }
            }
        }
        // position 0 is the identity
        XCTAssertEqual(half.value[0, 3], x.value[0, 3])
    }

    /// Naive causal softmax attention over one sequence, for comparison.
    func referenceAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, rows: Range<Int>, heads: Int, kvHeads: Int, d: Int) -> [[Float]] {
        var out: [[Float]] = []
        for i in rows {
            var row = [Float](repeating: 0, count: heads * d)
            for h in 0..<heads {
                let g = h / (heads / kvHeads)
                var scores: [Double] = []
                for j in rows.lowerBound...i {
                    var s = 0.0
                    for e in 0..<d { s += Double(q[i, h * d + e] * k[j, g * d + e]) }
                    scores.append(s / Double(d).squareRoot())
                }
                let m = scores.max()!
                let w = scores.map { exp($0 - m) }
                let z = w.reduce(0, +)
                for (n, j) in (rows.lowerBound...i).enumerated() {
                    for e in 0..<d { row[h * d + e] += Float(w[n] / z) * v[j, g * d + e] }
                }
            }
            out.append(row)
        }
        return out
    }

    func testAttentionMatchesNaiveSoftmaxAndNeverCrossesPackedSequences() throws {
        let heads = 4, kvHeads = 2, d = 8
        let layout = try PackedSequences(seqLen: 7, rows: [[4, 3]])
        XCTAssertEqual(layout.positions, [0, 1, 2, 3, 0, 1, 2])
        let q = rng.variable([7, heads * d]), k = rng.variable([7, kvHeads * d]), v = rng.variable([7, kvHeads * d])
        let out = try Tape().attention(q, k, v, heads: heads, kvHeads: kvHeads, headDim: d, layout: layout)
        for seq in [0..<4, 4..<7] {
            let expected = referenceAttention(q.value, k.value, v.value, rows: seq, heads: heads, kvHeads: kvHeads, d: d)
            for (n, i) in seq.enumerated() {
                for c in 0..<(heads * d) { XCTAssertEqual(out.value[i, c], expected[n][c], accuracy: 1e-5) }
            }
        }
    }

    func testAttentionInBlocksOfQueryRowsMatchesNaiveSoftmax() throws {
        let heads = 4, kvHeads = 2, d = 8
        let layout = try PackedSequences(seqLen: 9, rows: [[7, 2], [9]])
        let q = rng.variable([18, heads * d]), k = rng.variable([18, kvHeads * d]), v = rng.variable([18, kvHeads * d])
        for block in [1, 2, 3, 64] {
            let out = try Tape().attention(q, k, v, heads: heads, kvHeads: kvHeads, headDim: d, layout: layout, queryBlock: block)
            for seq in [0..<7, 7..<9, 9..<18] {
                let expected = referenceAttention(q.value, k.value, v.value, rows: seq, heads: heads, kvHeads: kvHeads, d: d)
                for (n, i) in seq.enumerated() {
                    for c in 0..<(heads * d) { XCTAssertEqual(out.value[i, c], expected[n][c], accuracy: 1e-5, "block \(block) row \(i)") }
                }
            }
        }
    }

    func testAttentionRejectsHeadsNotAMultipleOfKVHeads() throws {
        let layout = try PackedSequences(batch: 1, seqLen: 2)
        let q = rng.variable([2, 3 * 4]), kv = rng.variable([2, 2 * 4])
        XCTAssertThrowsError(try Tape().attention(q, kv, kv, heads: 3, kvHeads: 2, headDim: 4, layout: layout))
        XCTAssertThrowsError(try PackedSequences(seqLen: 4, rows: [[3, 2]]))
    }

    func testCrossEntropyMatchesFullSoftmaxOnTargetPositions() throws {
        let h = rng.variable([4, 5]), head = rng.variable([9, 5])
        let targets: [Int32] = [2, -1, 8, 0]
        let ce = try Tape().crossEntropy(hidden: h, head: head, targets: targets, vocabChunk: 4)
        XCTAssertEqual(ce.targetCount, 3)
        var total = 0.0
        for r in [0, 2, 3] {
            var logits = [Double](repeating: 0, count: 9)
            for c in 0..<9 { for e in 0..<5 { logits[c] += Double(h.value[r, e] * head.value[c, e]) } }
            let m = logits.max()!
            let lse = m + log(logits.map { exp($0 - m) }.reduce(0, +))
            total += lse - logits[Int(targets[r])]
        }
        XCTAssertEqual(Double(ce.loss.value[flat: 0]), total / 3, accuracy: 1e-5)
    }

    // Chunks of 20 columns run the kernels' sixteen-lane loops and their remainders.
    func testCrossEntropyMatchesFullSoftmaxWhenChunksAreWiderThanSixteenColumns() throws {
        let h = rng.variable([3, 5], scale: 2), head = rng.variable([45, 5], scale: 2)
        let targets: [Int32] = [44, 17, 3]
        let ce = try Tape().crossEntropy(hidden: h, head: head, targets: targets, vocabChunk: 20)
        var total = 0.0
        for r in 0..<3 {
            var logits = [Double](repeating: 0, count: 45)
            for c in 0..<45 { for e in 0..<5 { logits[c] += Double(h.value[r, e]) * Double(head.value[c, e]) } }
            let m = logits.max()!
            total += m + log(logits.map { exp($0 - m) }.reduce(0, +)) - logits[Int(targets[r])]
        }
        XCTAssertEqual(Double(ce.loss.value[flat: 0]), total / 3, accuracy: 1e-5)
    }

    func testTargetLogProbabilitiesAreMinusTheCrossEntropyOfEachTargetPosition() throws {
        let h = rng.variable([4, 5]), head = rng.variable([9, 5])
        let targets: [Int32] = [2, -1, 8, 0]
        let lp = try Tape().targetLogProbabilities(hidden: h, head: head, targets: targets, vocabChunk: 4)
        XCTAssertEqual(lp.shape.dims, [3])
        for (i, r) in [0, 2, 3].enumerated() {
            let single = targets.indices.map { $0 == r ? targets[r] : Tape.ignoreIndex }
            let ce = try Tape().crossEntropy(hidden: h, head: head, targets: single, vocabChunk: 4)
            XCTAssertEqual(lp.value[flat: i], -ce.loss.value[flat: 0], accuracy: 1e-5)
        }
    }

    func testBackwardFromAVectorWithItsGradientEqualsBackwardFromTheWeightedSum() throws {
        let h = rng.variable([4, 5]), head = rng.variable([9, 5], requiresGrad: false)
        let targets: [Int32] = [2, -1, 8, 0]
        let weights = try Tensor(shape: [3], scalars: [0.5, -2, 1.25])
        let tape = Tape()
        try tape.backward(try tape.targetLogProbabilities(hidden: h, head: head, targets: targets), gradient: weights)
        let viaVector = h.grad?.scalars ?? []
        h.zeroGrad()
        let sumTape = Tape()
        let lp = try sumTape.targetLogProbabilities(hidden: h, head: head, targets: targets)
        try sumTape.backward(try sumTape.sum(try sumTape.mul(lp, Variable(weights))))
        let viaSum = h.grad?.scalars ?? []
        XCTAssertEqual(viaVector.count, 20)
        for (a, b) in zip(viaVector, viaSum) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        XCTAssertThrowsError(try Tape().backward(lp, gradient: Tensor(zeros: [2])))
    }

    func testCrossEntropyWithNoTargetsIsZeroNotNaN() throws {
        let h = rng.variable([3, 4]), head = rng.variable([5, 4], requiresGrad: false)
        let tape = Tape()
        let ce = try tape.crossEntropy(hidden: h, head: head, targets: [-1, -1, -1])
        XCTAssertEqual(ce.targetCount, 0)
        XCTAssertEqual(ce.loss.value[flat: 0], 0)
        try tape.backward(ce.loss)
        XCTAssertFalse((h.grad?.scalars ?? []).contains { $0.isNaN })
    }

    func testCrossEntropyRejectsTargetsOutsideTheVocabulary() {
        let h = rng.variable([2, 4]), head = rng.variable([5, 4])
        XCTAssertThrowsError(try Tape().crossEntropy(hidden: h, head: head, targets: [1, 5])) { error in
            XCTAssertTrue("\(error)".contains("target id 5"), "\(error)")
        }
    }

    func testDropoutIsReproducibleBySeedAndKeepsTheExpectedShare() throws {
        let x = Variable(Tensor(shape: [100_000], repeating: 1))
        let a = try Tape().dropout(x, probability: 0.25, seed: 7)
        let b = try Tape().dropout(x, probability: 0.25, seed: 7)
        let c = try Tape().dropout(x, probability: 0.25, seed: 8)
        XCTAssertEqual(a.value.scalars, b.value.scalars)
        XCTAssertNotEqual(a.value.scalars, c.value.scalars)
        let kept = a.value.scalars.filter { $0 != 0 }
        XCTAssertEqual(Double(kept.count) / 100_000, 0.75, accuracy: 0.01)
        XCTAssertEqual(kept.first ?? 0, 1 / 0.75, accuracy: 1e-6)
        XCTAssertThrowsError(try Tape().dropout(x, probability: 1, seed: 0))
    }

    func testEmbeddingRejectsIdsOutsideTheTable() {
        let table = rng.variable([4, 2])
        XCTAssertThrowsError(try Tape().embedding([1, 4], table: table)) { error in
            XCTAssertTrue("\(error)".contains("token id 4 outside vocabulary of 4"), "\(error)")
        }
    }

    func testBackwardRequiresAScalarLoss() throws {
        let x = rng.variable([2, 2])
        let tape = Tape()
        let y = try tape.scale(x, by: 2)
        XCTAssertThrowsError(try tape.backward(y))
    }
}

/// Gradient buffers that `add` and `reshape` hand on instead of copying must never be shared.
final class GradientHandOverTests: XCTestCase {
    var rng = TestRNG(seed: 5)

    func testAddingAVariableToItselfDoublesItsGradient() throws {
        let x = rng.variable([3, 4]), w = rng.variable([3, 4], requiresGrad: false)
        let tape = Tape()
        try tape.backward(try tape.sum(try tape.mul(try tape.add(x, x), w)))
        for i in 0..<x.value.count { XCTAssertEqual(x.grad?[flat: i] ?? .nan, 2 * w.value[flat: i], accuracy: 1e-5) }
    }

    func testResidualBranchesKeepSeparateGradients() throws {
        // h = x + 3x; out = sum(h * w): dx = 4w. If both inputs shared one buffer, the scale's
        // backward would read a gradient the residual had already added into.
        let x = rng.variable([2, 5]), w = rng.variable([2, 5], requiresGrad: false)
        let tape = Tape()
        let h = try tape.add(x, try tape.scale(x, by: 3))
        try tape.backward(try tape.sum(try tape.mul(try tape.reshape(h, to: [10]), try tape.reshape(w, to: [10]))))
        for i in 0..<x.value.count { XCTAssertEqual(x.grad?[flat: i] ?? .nan, 4 * w.value[flat: i], accuracy: 1e-5) }
    }
}

/// The step profile charges every op's forward and backward time to that op.
final class StepProfileTests: XCTestCase {
    func testEveryRecordedOpGetsAForwardAndABackwardPart() throws {
        var rng = TestRNG(seed: 6)
        let profile = StepProfile()
        let tape = Tape(profile: profile)
        let x = rng.variable([4, 3])
        try tape.backward(try tape.sum(try tape.rmsNorm(x, weight: rng.variable([3], requiresGrad: false), eps: 1e-5)))
        XCTAssertEqual(Set(profile.seconds.keys), ["forward rmsNorm", "backward rmsNorm", "forward sum", "backward sum"])
        XCTAssertEqual(Set(profile.byCategory.keys), ["norms", "elementwise"])
        XCTAssertTrue(profile.seconds.values.allSatisfy { $0 >= 0 })
    }
}
