import Autodiff
import CKernels
import Tensors
import XCTest

/// Where exp underflows, the softmax-like kernels write exact zeros, not subnormals, whatever
/// the thread's floating-point mode: each test turns flushing off on the calling thread so the
/// kernel, not the CPU, has to do it. Inputs spread over 200 nats, far past exp's -87.3 limit.
final class UnderflowTests: XCTestCase {
    override func setUp() { SubnormalFlushing.setForCurrentThread(false) }
    override func tearDown() { SubnormalFlushing.setForCurrentThread(true) }

    /// 0, -1, ..., -199 shifted by `offset`: a row whose exp spans 200 nats.
    func spread(_ count: Int = 200, offset: Float = 0) -> [Float] { (0..<count).map { -Float($0) + offset } }

    func subnormals(_ values: [Float]) -> [Int] { values.indices.filter { values[$0].isSubnormal } }

    func testTheCallingThreadReallyStoresSubnormalsWithFlushingOff() {
        var tiny: Float = 1e-30
        for _ in 0..<10 { tiny *= 1e-1 }  // 1e-40 computed at run time
        XCTAssertTrue(tiny.isSubnormal, "with flushing off the CPU keeps subnormal results")
    }

    func testCrossEntropyGradientChunkHoldsNoSubnormal() {
        // One row of logits 0 ... -199: after the division by the row's count (scale 1/512) every
        // probability past about 81 nats would be subnormal.
        var logits = spread()
        var rowMax: Float = -.infinity, rowSum: Float = 0
        tc_ce_logsumexp_update(logits, 1, logits.count, logits.count, &rowMax, &rowSum)
        var lse = rowMax + log(rowSum)
        var target: Int32 = 3
        tc_ce_gradient_chunk(&logits, 1, logits.count, logits.count, &lse, &target, 1 / 512, nil)
        XCTAssertEqual(subnormals(logits), [])
        XCTAssertNotEqual(logits[70], 0, "probabilities that fit a float are kept")
        XCTAssertEqual(logits[150], 0)
        let expected = Float(1 / 512.0) * (exp(-70) / (1 / (1 - exp(-1))))
        XCTAssertEqual(logits[70], expected, accuracy: expected * 1e-4)
    }

    func testAttentionProbabilitiesAndScoreGradientsHoldNoSubnormal() {
        let cols = 200, rows = 1, firstRow = cols - 1
        var scores = spread(), lse: Float = 0
        tc_causal_softmax_forward(&scores, rows, cols, firstRow, &lse)
        XCTAssertEqual(subnormals(scores), [])
        XCTAssertEqual(scores.reduce(0, +), 1, accuracy: 1e-6)
        XCTAssertEqual(scores[199], 0)

        var rebuilt = spread(), dp = [Float](repeating: 1e-3, count: cols)
        let dout: [Float] = [1, 2], out: [Float] = [0.5, 0.25]
        tc_causal_softmax_backward(&rebuilt, &dp, &lse, dout, out, 2, 2, 0.125, rows, cols, firstRow)
        XCTAssertEqual(subnormals(rebuilt), [])
        XCTAssertEqual(subnormals(dp), [])
        for j in 0..<cols { XCTAssertEqual(rebuilt[j], scores[j], accuracy: 1e-6, "p[\(j)] rebuilt from lse") }
    }

    func testSwiGLUIsExactlyZeroWhereSigmoidUnderflowsAndHoldsNoSubnormal() {
        // Gates 0 ... -199, up and the incoming gradient 1: every value that fits a float is
        // normal, and past about -88 (sigmoid below FLT_MIN) silu and both gradients are 0.
        let gate = spread(), up = [Float](repeating: 1, count: gate.count), dout = up
        var out = [Float](repeating: 1, count: gate.count)
        tc_swiglu_forward(gate, up, &out, gate.count)
        var dgate = [Float](repeating: 0, count: gate.count), dup = dgate
        tc_swiglu_backward(gate, up, dout, &dgate, &dup, gate.count)
        var inPlace = dout, dgate2 = [Float](repeating: 1, count: gate.count)
        tc_swiglu_backward_in_place(gate, up, &inPlace, &dgate2, 0, gate.count)
        for values in [out, dgate, dup, inPlace, dgate2] {
            XCTAssertEqual(subnormals(values), [])
            XCTAssertEqual(values[89...].filter { $0 != 0 }.count, 0, "exact zeros past sigmoid's underflow")
        }
        XCTAssertNotEqual(out[80], 0, "silu(-80) still fits a float")
    }

    func testSoftmaxRowsHoldNoSubnormal() {
        let x = spread()
        var y = [Float](repeating: 0, count: x.count)
        tc_softmax_rows(x, &y, 1, x.count)
        XCTAssertEqual(subnormals(y), [])
    }

    /// The regression case of the Qwen3-shaped benchmark (first loss 84.6): a model whose logits
    /// spread far beyond 87 nats. Hidden rows and a head chosen so each row's logits run from 0
    /// to about -200; the gradients of both hold no subnormal and the loss is finite.
    func testCrossEntropyGradientsHoldNoSubnormalForLogitsSpreadOver200Nats() throws {
        // The products after the kernel (dlogits x hidden) run as every computing thread does.
        SubnormalFlushing.setForCurrentThread(true)
        let vocab = 64, d = 4, rows = 6
        var headValues = [Float](), hiddenValues = [Float]()
        for v in 0..<vocab { headValues += [-Float(v) * 3.2, 0.01 * Float(v % 5), 0, 1] }
        for r in 0..<rows { hiddenValues += [1, Float(r), 0, 0.5] }
        let head = Variable(try Tensor(shape: [vocab, d], scalars: headValues), requiresGrad: true)
        let hidden = Variable(try Tensor(shape: [rows, d], scalars: hiddenValues), requiresGrad: true)
        let logits = try hidden.value.matmul(head.value, transposeOther: true)
        let spreadOfRow0 = (0..<vocab).map { logits[flat: $0] }
        XCTAssertGreaterThan(spreadOfRow0.max()! - spreadOfRow0.min()!, 200)
        let tape = Tape()
        let ce = try tape.crossEntropy(hidden: hidden, head: head, targets: [0, 1, 2, 3, 4, 5], vocabChunk: 16)
        XCTAssertTrue(ce.loss.value[flat: 0].isFinite)
        try tape.backward(ce.loss)
        XCTAssertEqual(subnormals(head.grad!.scalars), [])
        XCTAssertEqual(subnormals(hidden.grad!.scalars), [])
    }
}
