import Autodiff
import Tensors
import XCTest

/// `Tape.checkpoint`: the same values and gradients as running the segment directly, with only
/// the segment's input and output kept between the passes.
final class GradientCheckpointTests: XCTestCase {
    var rng = TestRNG(seed: 11)

    /// y = rmsNorm(x) W1^T, silu-gated by x W2^T, plus x: a residual segment with parameters.
    func segment(_ w1: Variable, _ w2: Variable, _ norm: Variable) -> (Tape, Variable) throws -> Variable {
        return { tape, x in
            let n = try tape.rmsNorm(x, weight: norm, eps: 1e-5)
            let gated = try tape.swiglu(gate: try tape.linear(n, w1), up: try tape.linear(n, w2))
            return try tape.add(x, try tape.scale(gated, by: 0.5))
        }
    }

    func testCheckpointedSegmentGivesTheSameOutputAndGradientsBitwise() throws {
        let x = rng.variable([5, 4]), w1 = rng.variable([4, 4]), w2 = rng.variable([4, 4])
        let norm = rng.variable([4], requiresGrad: false)
        let body = segment(w1, w2, norm)

        let direct = Tape()
        let yDirect = try body(direct, try body(direct, x))
        try direct.backward(try direct.sum(yDirect))
        let expected = [x.grad!.scalars, w1.grad!.scalars, w2.grad!.scalars]
        for v in [x, w1, w2] { v.zeroGrad() }

        let checkpointed = Tape()
        let yCheckpointed = try checkpointed.checkpoint(try checkpointed.checkpoint(x, body), body)
        XCTAssertEqual(yCheckpointed.value.scalars, yDirect.value.scalars)
        try checkpointed.backward(try checkpointed.sum(yCheckpointed))
        XCTAssertEqual([x.grad!.scalars, w1.grad!.scalars, w2.grad!.scalars], expected)
    }

    func testForwardPassRecordsOneOpPerCheckpointedSegment() throws {
        let x = rng.variable([5, 4]), w1 = rng.variable([4, 4]), w2 = rng.variable([4, 4])
        let body = segment(w1, w2, rng.variable([4], requiresGrad: false))
        let direct = Tape()
        _ = try body(direct, x)
        XCTAssertEqual(direct.recordedCount, 6)  // norm, two products, swiglu, scale, add
        let checkpointed = Tape()
        _ = try checkpointed.checkpoint(x, body)
        XCTAssertEqual(checkpointed.recordedCount, 1)
    }

    /// The segment's parameters need gradients even when its input does not (the first block
    /// of a model reads frozen embeddings).
    func testParametersInsideGetGradientsWhenTheInputNeedsNone() throws {
        let x = rng.variable([3, 4], requiresGrad: false), w1 = rng.variable([4, 4]), w2 = rng.variable([4, 4])
        let tape = Tape()
        let y = try tape.checkpoint(x, segment(w1, w2, rng.variable([4], requiresGrad: false)))
        try tape.backward(try tape.sum(y))
        XCTAssertNil(x.grad)
        XCTAssertTrue(w1.grad!.scalars.contains { $0 != 0 })
        XCTAssertTrue(w2.grad!.scalars.contains { $0 != 0 })
    }

    func testInferenceTapeRunsTheSegmentDirectly() throws {
        let x = rng.variable([3, 4]), w1 = rng.variable([4, 4]), w2 = rng.variable([4, 4])
        let body = segment(w1, w2, rng.variable([4], requiresGrad: false))
        let tape = Tape(recording: false)
        let y = try tape.checkpoint(x, body)
        XCTAssertFalse(y.requiresGrad)
        XCTAssertEqual(y.value.scalars, try body(Tape(recording: false), x).value.scalars)
    }
}
