import Autodiff
import Foundation
import Tensors
import Training
import XCTest

/// The reference fixture written by scripts/reference/make_optimizer_fixtures.py (torch, transformers).
private struct OptimizerReference: Decodable {
    struct Schedule: Decodable {
        let kind: String
        let warmup: Int
        let total: Int
        let min_lr_ratio: Double
        let factors: [Double]?
    }
    struct Step: Decodable {
        let grads: [[Float]]
        let lr: Double
        let grad_norm: Double
        let params: [[Float]]
        let exp_avg: [[Float]]
        let exp_avg_sq: [[Float]]
    }
    struct AdamWRun: Decodable {
        let lr, beta1, beta2, eps, weight_decay, max_grad_norm: Double
        let schedule: Schedule
        let shapes: [[Int]]
        let initial: [[Float]]
        let steps: [Step]
    }
    let adamw: AdamWRun
    let schedules: [Schedule]

    static func load() throws -> OptimizerReference {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "optimizer_reference", withExtension: "json",
                                                  subdirectory: "Fixtures"))
        return try JSONDecoder().decode(OptimizerReference.self, from: Data(contentsOf: url))
    }
}

private func assertClose(_ actual: [Float], _ expected: [Float], relative: Float = 1e-6, _ what: String,
                         file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, what, file: file, line: line)
    // Rounding errors scale with the magnitudes that were summed, not with the result: an
    // element that cancels to near zero (an AdamW moment whose gradients changed sign) is
    // held to the tensor's largest magnitude. Which vector width the kernels run (AVX2 or
    // AVX-512 clones) changes the summation order and so these last bits.
    let scale = expected.map { abs($0) }.max() ?? 0
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let tolerance = relative * max(abs(e), scale, 1e-6)
        XCTAssertEqual(a, e, accuracy: tolerance, "\(what)[\(i)]", file: file, line: line)
    }
}

final class AdamWTests: XCTestCase {
    func testOneStepMatchesTheHandComputedUpdate() throws {
        // p = 1, g = 0.5, lr = 0.1, wd = 0.1: decay gives 0.99; m̂ = 0.5, v̂ = 0.25, so the step is 0.1 * 0.5 / 0.5.
        let p = Variable(try Tensor(shape: [1], scalars: [1]), requiresGrad: true)
        try p.accumulateGradient(try Tensor(shape: [1], scalars: [0.5]))
        let adamw = try AdamW(parameters: [p], weightDecay: 0.1)
        try adamw.step(learningRate: 0.1)
        XCTAssertEqual(p.value[0], 0.89, accuracy: 1e-6)
        XCTAssertEqual(adamw.exportState().moments[0].m[0], 0.05, accuracy: 1e-7)
        XCTAssertEqual(adamw.exportState().moments[0].v[0], 0.00025, accuracy: 1e-9)
        XCTAssertEqual(adamw.stepCount, 1)
    }

    func testMatchesTorchAdamWWithClippingAndScheduleForFiveSteps() throws {
        let reference = try OptimizerReference.load().adamw
        let parameters = try zip(reference.shapes, reference.initial).map {
            Variable(try Tensor(shape: Shape($0), scalars: $1), requiresGrad: true)
        }
        let adamw = try AdamW(parameters: parameters, beta1: reference.beta1, beta2: reference.beta2,
                              epsilon: reference.eps, weightDecay: reference.weight_decay)
        let schedule = LearningRateSchedule(
            kind: .cosine, baseLR: reference.lr, warmupSteps: reference.schedule.warmup,
            totalSteps: reference.schedule.total, minLRRatio: reference.schedule.min_lr_ratio)
        for (index, step) in reference.steps.enumerated() {
            adamw.zeroGrad()
            for (p, g) in zip(parameters, step.grads) { try p.accumulateGradient(try Tensor(shape: p.shape, scalars: g)) }
            let lr = schedule.learningRate(atStep: adamw.stepCount)
            XCTAssertEqual(lr, step.lr, accuracy: 1e-12, "lr at step \(index)")
            let norm = GradientClipping.clipGlobalNorm(parameters, maxNorm: reference.max_grad_norm)
            XCTAssertEqual(norm, step.grad_norm, accuracy: 1e-6 * step.grad_norm, "norm at step \(index)")
            try adamw.step(learningRate: lr)
            let state = adamw.exportState()
            for k in parameters.indices {
                assertClose(parameters[k].value.scalars, step.params[k], "step \(index) param \(k)")
                assertClose(state.moments[k].m.scalars, step.exp_avg[k], "step \(index) exp_avg \(k)")
                assertClose(state.moments[k].v.scalars, step.exp_avg_sq[k], "step \(index) exp_avg_sq \(k)")
            }
        }
    }

    func testParameterWithoutGradientIsLeftUntouched() throws {
        let p = Variable(try Tensor(shape: [2], scalars: [1, 2]), requiresGrad: true)
        let adamw = try AdamW(parameters: [p], weightDecay: 0.5)
        try adamw.step(learningRate: 0.1)
        XCTAssertEqual(p.value.scalars, [1, 2])
    }

    func testFrozenParameterIsRejected() {
        XCTAssertThrowsError(try AdamW(parameters: [Variable(Tensor(zeros: [2]))])) { error in
            XCTAssertEqual(error as? OptimizerError, .parameterDoesNotRequireGrad(index: 0))
        }
    }

    func testExportedStateResumesIdentically() throws {
        func makeParameter() throws -> Variable { Variable(try Tensor(shape: [3], scalars: [0.5, -1, 2]), requiresGrad: true) }
        let gradient = try Tensor(shape: [3], scalars: [0.1, -0.2, 0.3])
        let straight = try makeParameter(), resumed = try makeParameter()
        let a = try AdamW(parameters: [straight], weightDecay: 0.01)
        for _ in 0..<4 { a.zeroGrad(); try straight.accumulateGradient(gradient); try a.step(learningRate: 0.01) }

        let first = try AdamW(parameters: [resumed], weightDecay: 0.01)
        for _ in 0..<2 { first.zeroGrad(); try resumed.accumulateGradient(gradient); try first.step(learningRate: 0.01) }
        let second = try AdamW(parameters: [resumed], weightDecay: 0.01)
        try second.importState(first.exportState())
        for _ in 0..<2 { second.zeroGrad(); try resumed.accumulateGradient(gradient); try second.step(learningRate: 0.01) }
        XCTAssertEqual(resumed.value.scalars, straight.value.scalars)
    }

    func testImportRejectsMomentsOfAnotherShape() throws {
        let adamw = try AdamW(parameters: [Variable(Tensor(zeros: [2]), requiresGrad: true)])
        let wrong = AdamW.State(step: 1, moments: [.init(m: Tensor(zeros: [3]), v: Tensor(zeros: [3]))])
        XCTAssertThrowsError(try adamw.importState(wrong))
    }
}

final class GradientClippingTests: XCTestCase {
    func testClipsToMaxNormAndReturnsThePreClipNorm() throws {
        let a = Variable(Tensor(zeros: [2]), requiresGrad: true), b = Variable(Tensor(zeros: [1]), requiresGrad: true)
        try a.accumulateGradient(try Tensor(shape: [2], scalars: [3, 0]))
        try b.accumulateGradient(try Tensor(shape: [1], scalars: [4]))
        let norm = GradientClipping.clipGlobalNorm([a, b], maxNorm: 1)
        XCTAssertEqual(norm, 5, accuracy: 1e-12)
        XCTAssertEqual(GradientClipping.globalNorm([a, b]), 1, accuracy: 1e-6)
        XCTAssertEqual(a.grad?[0] ?? 0, 0.6, accuracy: 1e-6)
    }

    func testGradientsBelowTheLimitAreUnchanged() throws {
        let a = Variable(Tensor(zeros: [2]), requiresGrad: true)
        try a.accumulateGradient(try Tensor(shape: [2], scalars: [0.3, 0.4]))
        XCTAssertEqual(GradientClipping.clipGlobalNorm([a], maxNorm: 1), 0.5, accuracy: 1e-7)
        XCTAssertEqual(a.grad?.scalars, [0.3, 0.4])
    }

    func testNonFiniteNormLeavesGradientsForTheCallerToSkip() throws {
        let a = Variable(Tensor(zeros: [2]), requiresGrad: true)
        try a.accumulateGradient(try Tensor(shape: [2], scalars: [.infinity, 1]))
        XCTAssertFalse(GradientClipping.clipGlobalNorm([a], maxNorm: 1).isFinite)
        XCTAssertEqual(a.grad?[1], 1)
    }
}

final class LearningRateScheduleTests: XCTestCase {
    func testWarmupRisesLinearlyFromZero() {
        let s = LearningRateSchedule(kind: .constant, baseLR: 1e-3, warmupSteps: 4, totalSteps: 10)
        XCTAssertEqual((0...5).map { s.learningRate(atStep: $0) }, [0, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3])
    }

    func testCosineReachesHalfwayAndTheMinimum() {
        let s = LearningRateSchedule(kind: .cosine, baseLR: 1, warmupSteps: 2, totalSteps: 10, minLRRatio: 0.1)
        XCTAssertEqual(s.learningRate(atStep: 2), 1, accuracy: 1e-12)
        XCTAssertEqual(s.learningRate(atStep: 6), 0.55, accuracy: 1e-12)
        XCTAssertEqual(s.learningRate(atStep: 10), 0.1, accuracy: 1e-12)
    }

    func testCosineStaysAtItsMinimumPastTotalSteps() {
        let s = LearningRateSchedule(kind: .cosine, baseLR: 1, warmupSteps: 0, totalSteps: 10, minLRRatio: 0.1)
        XCTAssertEqual(s.learningRate(atStep: 15), 0.1, accuracy: 1e-12)
    }

    func testLinearDecaysToTheMinimumRatio() {
        let s = LearningRateSchedule(kind: .linear, baseLR: 1, warmupSteps: 2, totalSteps: 10, minLRRatio: 0.1)
        XCTAssertEqual(s.learningRate(atStep: 6), 0.55, accuracy: 1e-12)
        XCTAssertEqual(s.learningRate(atStep: 10), 0.1, accuracy: 1e-12)
        XCTAssertEqual(s.learningRate(atStep: 20), 0.1, accuracy: 1e-12)
    }

    func testFactorsMatchTransformers() throws {
        for reference in try OptimizerReference.load().schedules {
            let kind = try XCTUnwrap(LRSchedulerName(rawValue: reference.kind))
            let s = LearningRateSchedule(kind: kind, baseLR: 1, warmupSteps: reference.warmup,
                                         totalSteps: reference.total, minLRRatio: reference.min_lr_ratio)
            for (step, expected) in (reference.factors ?? []).enumerated() {
                XCTAssertEqual(s.factor(atStep: step), expected, accuracy: 1e-12,
                               "\(reference.kind) warmup \(reference.warmup) min \(reference.min_lr_ratio) step \(step)")
            }
        }
    }
}
