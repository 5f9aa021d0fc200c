import Autodiff
import LoRA
import Models
import Tensors
import TestSupport
import XCTest

final class LoRAAdapterTests: XCTestCase {
    func logits(_ model: TransformerModel, _ tokens: [Int32]) throws -> Tensor {
        let layout = try PackedSequences(batch: 1, seqLen: tokens.count)
        let h = try model.hiddenStates(Tape(recording: false), tokens: tokens, context: .packed(layout))
        return model.logits(hidden: h.value, rows: Array(tokens.indices))
    }

    let tokens: [Int32] = [1, 5, 9, 2, 33, 7]

    func testFreshAdaptersLeaveTheModelUnchanged() throws {
        let model = try makeTinyModel(.qwen2)
        let before = try logits(model, tokens)
        let lora = try LoRAModel(attachingTo: model, spec: try LoRASpec(rank: 4, alpha: 8), seed: 1)
        XCTAssertEqual(lora.adapters.count, 2 * 7)
        XCTAssertEqual(try logits(model, tokens).scalars, before.scalars)
    }

    func testAIsKaimingUniformAndBIsZero() throws {
        let model = try makeTinyModel()
        let lora = try LoRAModel(attachingTo: model, spec: try LoRASpec(rank: 8, alpha: 16), seed: 7)
        let a = lora.adapters[0].a.value, bound = 1 / Float(a.shape[1]).squareRoot()
        XCTAssertTrue(a.scalars.allSatisfy { abs($0) <= bound })
        let meanSquare = a.scalars.map { $0 * $0 }.reduce(0, +) / Float(a.count)
        XCTAssertEqual(meanSquare, bound * bound / 3, accuracy: bound * bound * 0.12)  // uniform variance
        XCTAssertTrue(lora.adapters.allSatisfy { $0.b.value.scalars.allSatisfy { $0 == 0 } })
        XCTAssertNotEqual(lora.adapters[0].a.value.scalars, lora.adapters[1].a.value.scalars.prefix(lora.adapters[0].a.value.count).map { $0 })
    }

    func testScaleIsAlphaOverRankOrOverItsRootWithRSLoRA() throws {
        XCTAssertEqual(try LoRASpec(rank: 16, alpha: 32).scale, 2)
        XCTAssertEqual(try LoRASpec(rank: 16, alpha: 32, useRSLoRA: true).scale, 8)
    }

    func testAdapterOutputEqualsTheMergedWeight() throws {
        let model = try makeTinyModel(.llama)
        let lora = try LoRAModel(attachingTo: model, spec: try LoRASpec(rank: 3, alpha: 5, targetModules: ["q_proj", "down_proj"]), seed: 2)
        var rng = FixtureRNG(seed: 11)
        for adapter in lora.adapters { try adapter.b.value.assign(rng.tensor(adapter.b.shape, scale: 0.5)) }
        let withAdapters = try logits(model, tokens)

        // The same model with W + scale * B A in place of each adapted weight.
        let merged = try makeTinyModel(.llama)
        for (block, mergedBlock) in zip(model.blocks, merged.blocks) {
            for (linear, target) in zip(block.linears, mergedBlock.linears) {
                guard let adapter = linear.adapter as? LoRAAdapter, let dense = target.weight as? DenseMatrix else { continue }
                try dense.tensor.addScaled(try adapter.deltaWeight())
            }
        }
        let expected = try logits(merged, tokens)
        for i in 0..<expected.count { XCTAssertEqual(withAdapters[flat: i], expected[flat: i], accuracy: 1e-4) }
        XCTAssertNotEqual(withAdapters.scalars, try logits(try makeTinyModel(.llama), tokens).scalars)
    }

    func testOnlyRequestedModulesAndLayersAreAdapted() throws {
        let model = try makeTinyModel()
        let lora = try LoRAModel(attachingTo: model, spec: try LoRASpec(rank: 2, alpha: 2, targetModules: ["v_proj", "up_proj"], layers: [1]), seed: 1)
        XCTAssertEqual(lora.adapters.map(\.module), ["model.layers.1.self_attn.v_proj", "model.layers.1.mlp.up_proj"])
        XCTAssertNil(model.blocks[0].attention.v.adapter)
        XCTAssertThrowsError(try LoRAModel(attachingTo: try makeTinyModel(), spec: try LoRASpec(rank: 2, alpha: 2, layers: [2]), seed: 1)) { error in
            XCTAssertEqual(error as? LoRAError, .layerOutOfRange(layer: 2, layerCount: 2))
        }
        XCTAssertThrowsError(try LoRASpec(rank: 2, alpha: 2, targetModules: ["qproj"])) { error in
            XCTAssertTrue("\(error)".contains("unknown target module 'qproj'"))
        }
    }

    func testGradientsReachOnlyTheAdapters() throws {
        let model = try makeTinyModel()
        let lora = try LoRAModel(attachingTo: model, spec: try LoRASpec(rank: 2, alpha: 4, dropout: 0.1), seed: 1)
        lora.setDropoutSeed(5)
        let tape = Tape()
        let layout = try PackedSequences(batch: 1, seqLen: tokens.count)
        let loss = try model.loss(tape, tokens: tokens, targets: Array(tokens.dropFirst()) + [Tape.ignoreIndex], layout: layout)
        try tape.backward(loss.loss)
        XCTAssertTrue(lora.adapters.allSatisfy { $0.a.grad != nil && $0.b.grad != nil })
        XCTAssertNil(model.embedding.grad)
        XCTAssertNil(model.finalNorm.weight.grad)
        // B starts at zero, so A's gradient is zero and B's is not
        XCTAssertTrue(lora.adapters[0].a.grad!.scalars.allSatisfy { $0 == 0 })
        XCTAssertTrue(lora.adapters[0].b.grad!.scalars.contains { $0 != 0 })
    }

    /// Finite differences through the whole model with respect to adapter weights.
    func testAdapterGradientsMatchFiniteDifferences() throws {
        let model = try makeTinyModel(.qwen3, tied: false)
        let lora = try LoRAModel(attachingTo: model, spec: try LoRASpec(rank: 2, alpha: 4, targetModules: ["k_proj", "gate_proj"]), seed: 3)
        var rng = FixtureRNG(seed: 4)
        for adapter in lora.adapters { try adapter.b.value.assign(rng.tensor(adapter.b.shape, scale: 0.3)) }
        let layout = try PackedSequences(batch: 1, seqLen: tokens.count)
        let targets = Array(tokens.dropFirst()) + [Tape.ignoreIndex]
        func lossValue() throws -> Double {
            Double(try model.loss(Tape(recording: false), tokens: tokens, targets: targets, layout: layout).loss.value[flat: 0])
        }
        let tape = Tape()
        try tape.backward(try model.loss(tape, tokens: tokens, targets: targets, layout: layout).loss)
        let eps: Float = 1e-2
        for adapter in lora.adapters {
            for v in [adapter.a, adapter.b] {
                let grad = v.grad!
                for i in stride(from: 0, to: v.value.count, by: max(1, v.value.count / 6)) {
                    let saved = v.value[flat: i]
                    v.value[flat: i] = saved + eps
                    let plus = try lossValue()
                    v.value[flat: i] = saved - eps
                    let minus = try lossValue()
                    v.value[flat: i] = saved
                    let numeric = Float((plus - minus) / Double(2 * eps))
                    XCTAssertEqual(grad[flat: i], numeric, accuracy: 2e-3 + 2e-2 * abs(numeric), "\(adapter.module) element \(i)")
                }
            }
        }
    }
}
