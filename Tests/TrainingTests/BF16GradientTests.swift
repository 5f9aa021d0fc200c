import Autodiff
import Foundation
import Tensors
@testable import Training
import XCTest

/// The bf16 frozen-weight path (`model.weights: bf16`) gives the LoRA parameters the same
/// gradients as the Float32 path, within what rounding weights and activations to bfloat16
/// (8 significant bits) can change. Same tiny model, same adapter values, same batch; every
/// projection's A and B in both layers, for next-token training and DPO with and without the
/// RPO term. Runs on any CPU: where AVX512_BF16 is missing the bf16 kernel is emulated with the
/// same sums (`BF16Kernel`).
///
/// Tolerances (docs/architecture.md, "Weight storage by CPU"): for every parameter tensor the
/// cosine similarity of the two gradients is at least 0.999 and |g_bf16 - g_f32| / |g_f32|
/// (Euclidean norms) at most 0.05. Measured on this model (2026-12-01): worst cosine 0.99972
/// and worst relative error 0.024 (DPO), 0.99988 / 0.017 (next-token), 0.99984 / 0.019 (DPO
/// with rpo_alpha).
final class BF16GradientTests: TinyRunTestCase {
    static let minimumCosine = 0.999
    static let maximumRelativeError = 0.05

    /// Float32 and bf16 trainers holding the same adapter values: the Float32 one trained for
    /// three steps (so B is away from zero and every term is non-trivial), copied into the other.
    func trainers(_ overrides: [String], storage: String) throws -> (float32: Trainer, bf16: Trainer) {
        let common = ["lora.dropout=0"] + overrides
        let float32 = try Trainer(config: try TinyRun.config(dir: dir, name: "float32", overrides: common + ["model.weights=float32"]),
                                  progress: TinyRun.Silent())
        try float32.run(stopAfter: 3)
        let bf16 = try Trainer(config: try TinyRun.config(dir: dir, name: "bf16", overrides: common + ["model.weights=\(storage)"]),
                               progress: TinyRun.Silent())
        try bf16.lora.load(try float32.lora.weights)
        XCTAssertEqual(adapterValues(bf16), adapterValues(float32))
        return (float32, bf16)
    }

    /// Gradients of every LoRA parameter after one micro-step on the first planned batch.
    func gradients(_ trainer: Trainer) throws -> [String: [Float]] {
        let batch = try trainer.planner.assemble(
            trainer.planner.plan(order: Array(trainer.trainExamples.indices), examples: trainer.trainExamples)[0],
            examples: trainer.trainExamples)
        for p in trainer.lora.parameters { p.zeroGrad() }
        if trainer.config.training.objective == .dpo {
            _ = try trainer.preferenceMicroStep(batch, weight: 1)
        } else {
            _ = try trainer.nextTokenMicroStep(batch, weight: 1)
        }
        var result: [String: [Float]] = [:]
        for adapter in trainer.lora.adapters {
            result["\(adapter.module).lora_A"] = try XCTUnwrap(adapter.a.grad).scalars
            result["\(adapter.module).lora_B"] = try XCTUnwrap(adapter.b.grad).scalars
        }
        return result
    }

    func checkGradientsAgree(_ overrides: [String], storage: String = "bf16") throws {
        let (float32, bf16) = try trainers(overrides, storage: storage)
        XCTAssertEqual(bf16.loaded.model.blocks.count, 2)
        let reference = try gradients(float32), rounded = try gradients(bf16)
        // 7 projections x 2 layers x (A, B)
        XCTAssertEqual(reference.count, 28)
        XCTAssertEqual(Set(reference.keys), Set(rounded.keys))
        var worstCosine = 1.0, worstError = 0.0
        for (name, g) in reference.sorted(by: { $0.key < $1.key }) {
            let h = try XCTUnwrap(rounded[name])
            var dot = 0.0, gg = 0.0, hh = 0.0, dd = 0.0
            for (x, y) in zip(g, h) {
                dot += Double(x) * Double(y); gg += Double(x) * Double(x); hh += Double(y) * Double(y)
                dd += (Double(x) - Double(y)) * (Double(x) - Double(y))
            }
            XCTAssertGreaterThan(gg, 0, "\(name): the Float32 gradient is zero, so the comparison would prove nothing")
            let cosine = dot / (gg.squareRoot() * hh.squareRoot()), error = dd.squareRoot() / gg.squareRoot()
            XCTAssertGreaterThanOrEqual(cosine, Self.minimumCosine, "\(name): cosine similarity of bf16 and Float32 gradients")
            XCTAssertLessThanOrEqual(error, Self.maximumRelativeError, "\(name): relative error of the bf16 gradient")
            worstCosine = min(worstCosine, cosine); worstError = max(worstError, error)
        }
        print("bf16 vs Float32 LoRA gradients \(overrides) over \(reference.count) tensors (\(storage), bf16 kernel \(BF16Matrix.defaultKernel)): worst cosine \(worstCosine), worst relative error \(worstError)")
    }

    func testNextTokenGradientsOfTheBF16PathMatchFloat32() throws {
        try checkGradientsAgree([])
    }

    func testDPOGradientsOfTheBF16PathMatchFloat32() throws {
        try checkGradientsAgree(["training.objective=dpo"])
    }

    func testDPOWithTheChosenAnswersNextTokenTermGradientsOfTheBF16PathMatchFloat32() throws {
        try checkGradientsAgree(["training.objective=dpo", "training.rpo_alpha=0.7"])
    }

    func requireOneDNNBF16() throws {
        if case .failure(let reason) = OneDNNPrecision.bf16.implementation {
            throw XCTSkip("oneDNN has no bf16 matmul on this CPU: \(reason)")
        }
    }

    func testNextTokenGradientsOfTheOneDNNPathMatchFloat32() throws {
        try requireOneDNNBF16()
        try checkGradientsAgree([], storage: "onednn-bf16")
    }

    func testDPOGradientsOfTheOneDNNPathMatchFloat32() throws {
        try requireOneDNNBF16()
        try checkGradientsAgree(["training.objective=dpo"], storage: "onednn-bf16")
    }

    func testDPOWithTheChosenAnswersNextTokenTermGradientsOfTheOneDNNPathMatchFloat32() throws {
        try requireOneDNNBF16()
        try checkGradientsAgree(["training.objective=dpo", "training.rpo_alpha=0.7"], storage: "onednn-bf16")
    }

    func testOneDNNStorageIsRefusedWithTheReasonWhereOneDNNHasNoBF16() throws {
        guard case .failure = OneDNNPrecision.bf16.implementation else {
            throw XCTSkip("oneDNN implements bf16 matmul on this CPU, so there is no refusal to check")
        }
        XCTAssertThrowsError(try Trainer(config: try TinyRun.config(dir: dir, overrides: ["model.weights=onednn-bf16"]), progress: TinyRun.Silent())) { error in
            XCTAssertTrue("\(error)".contains("weights: onednn-bf16 cannot run here: OneDNNMatrix: oneDNN bf16 matmul unimplemented"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/runs"), "nothing is written before the model loads")
    }
}
