import Autodiff
import Tensors
import XCTest

/// One finite-difference gradient check per differentiable op (tolerances in GradientCheck.swift).
final class GradientCheckTests: XCTestCase {
    var rng = TestRNG(seed: 1)

    func testLinearWithBias() throws {
        let x = rng.variable([5, 7]), w = rng.variable([4, 7]), b = rng.variable([4])
        try checkGradients([x, w, b]) { try $0.linear(x, w, bias: b) }
    }

    func testLinearOnRank3Input() throws {
        let x = rng.variable([2, 3, 6]), w = rng.variable([5, 6])
        try checkGradients([x, w]) { try $0.linear(x, w) }
    }

    func testFrozenLinearWithLowRankUpdate() throws {
        let x = rng.variable([5, 6]), a = rng.variable([3, 6]), b = rng.variable([4, 3]), bias = rng.variable([4])
        let w = try DenseMatrix(rng.tensor([4, 6]))
        try checkGradients([x, a, b, bias]) { try $0.linear(x, frozen: w, bias: bias, lowRankA: a, lowRankB: b, scale: 1.5) }
    }

    func testFrozenLinearWithLowRankUpdateOnADroppedOutInput() throws {
        let x = rng.variable([5, 6]), a = rng.variable([3, 6]), b = rng.variable([4, 3])
        let w = try DenseMatrix(rng.tensor([4, 6]))
        try checkGradients([x, a, b]) { t in
            try t.linear(x, frozen: w, lowRankA: a, lowRankB: b, scale: 0.5, lowRankInput: try t.dropout(x, probability: 0.3, seed: 9))
        }
    }

    func testLowRankUpdateOnRebuiltNormAndActivationOutputs() throws {
        let x = rng.variable([5, 6]), g = rng.variable([5, 6]), norm = rng.variable([6])
        let a = rng.variable([3, 6]), b = rng.variable([4, 3])
        let w = try DenseMatrix(rng.tensor([4, 6]))
        try checkGradients([x, g, norm, a, b]) { t in
            let n = try t.rmsNorm(x, weight: norm, eps: 1e-5)
            let s = try t.swiglu(gate: g, up: n)
            return try t.add(try t.linear(n, frozen: w, lowRankA: a, lowRankB: b, scale: 1.5),
                             try t.linear(s, frozen: w, lowRankA: a, lowRankB: b, scale: 0.5))
        }
    }

    func testMatmulPlainAndTransposed() throws {
        let a = rng.variable([3, 4]), b = rng.variable([4, 5]), bt = rng.variable([5, 4])
        try checkGradients([a, b]) { try $0.matmul(a, b) }
        try checkGradients([a, bt]) { try $0.matmul(a, bt, transposeB: true) }
    }

    func testAddMulScaleSumReshape() throws {
        let a = rng.variable([3, 4]), b = rng.variable([3, 4])
        try checkGradients([a, b]) { t in
            let s = try t.add(a, b)
            let p = try t.mul(s, a)  // a appears twice: gradients must accumulate
            return try t.reshape(try t.scale(p, by: -1.5), to: [4, 3])
        }
        try checkGradients([a]) { try $0.sum(a) }
    }

    func testEmbeddingWithRepeatedIds() throws {
        let table = rng.variable([6, 4])
        try checkGradients([table]) { try $0.embedding([3, 0, 3, 5], table: table) }
    }

    func testRMSNorm() throws {
        let x = rng.variable([6, 8]), w = rng.variable([8])
        try checkGradients([x, w]) { try $0.rmsNorm(x, weight: w, eps: 1e-5) }
    }

    func testRotaryBothConventions() throws {
        let x = rng.variable([5, 2 * 8])
        let positions: [Int32] = [0, 1, 2, 0, 7]
        for convention in RotaryConvention.allCases {
            try checkGradients([x]) {
                try $0.rotary(x, positions: positions, headDim: 8, base: 10_000, convention: convention)
            }
        }
    }

    func testRotaryInPlaceOnAProjectionOutput() throws {
        // In place rotates its input's buffer, so it is applied to an intermediate, as q and k are.
        let x = rng.variable([5, 6]), w = rng.variable([2 * 8, 6])
        let positions: [Int32] = [0, 1, 2, 0, 7]
        for convention in RotaryConvention.allCases {
            try checkGradients([x, w]) {
                try $0.rotary(try $0.linear(x, w), positions: positions, headDim: 8, base: 10_000, convention: convention, inPlace: true)
            }
        }
    }

    func testRotaryInPlaceEqualsTheCopyingOneForwardAndBackward() throws {
        let x1 = rng.variable([5, 16]), x2 = Variable(x1.value.copy(), requiresGrad: true)
        let positions: [Int32] = [0, 1, 2, 0, 7]
        let t1 = Tape(), t2 = Tape()
        let a = try t1.rotary(try t1.scale(x1, by: 1), positions: positions, headDim: 8, base: 10_000, convention: .halfRotation)
        let b = try t2.rotary(try t2.scale(x2, by: 1), positions: positions, headDim: 8, base: 10_000, convention: .halfRotation, inPlace: true)
        XCTAssertEqual(a.value.scalars, b.value.scalars)
        let seed = rng.tensor([5, 16])
        try t1.backward(a, gradient: seed)
        try t2.backward(b, gradient: seed.copy())
        XCTAssertEqual(x1.grad!.scalars, x2.grad!.scalars)
    }

    func testGroupedQueryAttentionWithPackedSequences() throws {
        // batch 2 of 5 tokens; row 0 packs sequences of 3 and 2 tokens; 4 query heads, 2 kv heads
        let layout = try PackedSequences(seqLen: 5, rows: [[3, 2], [5]])
        let q = rng.variable([10, 4 * 4]), k = rng.variable([10, 2 * 4]), v = rng.variable([10, 2 * 4])
        try checkGradients([q, k, v]) {
            try $0.attention(q, k, v, heads: 4, kvHeads: 2, headDim: 4, layout: layout)
        }
    }

    func testAttentionInBlocksOfTwoQueryRowsWithPackedSequences() throws {
        // row 0 packs sequences of 5 and 2 tokens (blocks 2+2+1 and 2), row 1 one of 7 tokens
        let layout = try PackedSequences(seqLen: 7, rows: [[5, 2], [7]])
        let q = rng.variable([14, 4 * 4]), k = rng.variable([14, 2 * 4]), v = rng.variable([14, 2 * 4])
        try checkGradients([q, k, v]) {
            try $0.attention(q, k, v, heads: 4, kvHeads: 2, headDim: 4, layout: layout, queryBlock: 2)
        }
    }

    func testSwiGLU() throws {
        let g = rng.variable([4, 6], scale: 3), u = rng.variable([4, 6])
        try checkGradients([g, u]) { try $0.swiglu(gate: g, up: u) }
    }

    // The backward pass writes up's gradient over the incoming one when no gradient has reached
    // either input yet; these three cover the other cases it must tell apart.
    func testSwiGLUWhenTheGateAlreadyHoldsAGradient() throws {
        let g = rng.variable([4, 6], scale: 3), u = rng.variable([4, 6])
        try checkGradients([g, u]) { t in try t.add(try t.swiglu(gate: g, up: u), try t.scale(g, by: 2)) }
    }

    func testSwiGLUWithAFrozenGate() throws {
        let g = rng.variable([4, 6], scale: 3, requiresGrad: false), u = rng.variable([4, 6])
        try checkGradients([u]) { try $0.swiglu(gate: g, up: u) }
    }

    func testSwiGLUOfOneVariableAsGateAndUp() throws {
        let x = rng.variable([4, 6], scale: 2)
        try checkGradients([x]) { try $0.swiglu(gate: x, up: x) }
    }

    func testDropoutWithFixedSeed() throws {
        let x = rng.variable([8, 8])
        try checkGradients([x]) { try $0.dropout(x, probability: 0.3, seed: 99) }
    }

    func testCrossEntropyAcrossVocabularyChunksWithIgnoredPositions() throws {
        let h = rng.variable([5, 6]), head = rng.variable([11, 6])
        let targets: [Int32] = [3, -1, 10, 0, -1]
        try checkGradients([h, head]) { t in
            // vocab 11 in chunks of 4: the last chunk is partial
            try t.scale(try t.crossEntropy(hidden: h, head: head, targets: targets, vocabChunk: 4).loss, by: 1)
        }
    }

    func testCrossEntropyWithChunksWiderThanSixteenColumns() throws {
        let h = rng.variable([3, 6]), head = rng.variable([37, 6])
        let targets: [Int32] = [36, -1, 5]
        try checkGradients([h, head]) { t in
            try t.scale(try t.crossEntropy(hidden: h, head: head, targets: targets, vocabChunk: 20).loss, by: 1)
        }
    }

    func testTargetLogProbabilitiesAcrossVocabularyChunksWithIgnoredPositions() throws {
        let h = rng.variable([5, 6]), head = rng.variable([11, 6])
        let targets: [Int32] = [3, -1, 10, 0, -1]
        try checkGradients([h, head]) { t in
            try t.targetLogProbabilities(hidden: h, head: head, targets: targets, vocabChunk: 4)
        }
    }
}
