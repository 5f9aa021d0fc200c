import Autodiff
import LoRA
import Models
import Tensors
import TestSupport
import XCTest

/// `TransformerModel.gradientCheckpointing` recomputes each block in the backward pass; the
/// loss and every adapter gradient stay bitwise what they are without it.
final class GradientCheckpointingTests: XCTestCase {
    /// Two packed sequences, so attention's sequence boundaries are recomputed too.
    let tokens: [Int32] = [1, 5, 9, 2, 33, 7, 4, 8, 1, 12, 39, 3]

    func lossAndGradients(_ architecture: ModelArchitecture, checkpointing: Bool) throws -> (loss: Float, gradients: [[Float]], recorded: Int) {
        let model = try makeTinyModel(architecture, tied: false)
        model.gradientCheckpointing = checkpointing
        let lora = try LoRAModel(attachingTo: model, spec: try LoRASpec(rank: 2, alpha: 4, dropout: 0.2), seed: 3)
        var rng = FixtureRNG(seed: 9)
        for adapter in lora.adapters { try adapter.b.value.assign(rng.tensor(adapter.b.shape, scale: 0.3)) }
        lora.setDropoutSeed(17)
        let layout = try PackedSequences(batch: 2, seqLen: tokens.count / 2)
        let targets = tokens.enumerated().map { i, _ in i % 6 == 5 ? Tape.ignoreIndex : tokens[i + 1] }
        let tape = Tape()
        let loss = try model.loss(tape, tokens: tokens, targets: targets, layout: layout).loss
        let recorded = tape.recordedCount
        try tape.backward(loss)
        return (loss.value[flat: 0], lora.adapters.flatMap { [$0.a.grad!.scalars, $0.b.grad!.scalars] }, recorded)
    }

    func testLossAndAdapterGradientsAreBitwiseTheSameWithCheckpointing() throws {
        for architecture in [ModelArchitecture.llama, .qwen3] {
            let plain = try lossAndGradients(architecture, checkpointing: false)
            let checkpointed = try lossAndGradients(architecture, checkpointing: true)
            XCTAssertEqual(checkpointed.loss, plain.loss, "\(architecture)")
            XCTAssertEqual(checkpointed.gradients, plain.gradients, "\(architecture)")
            XCTAssertTrue(plain.gradients.joined().contains { $0 != 0 })
        }
    }

    /// What makes it save memory: the tape keeps one record per block (holding the block's
    /// input) instead of records holding every intermediate of every block.
    func testTheForwardPassRecordsOneOpPerBlock() throws {
        let layers = try makeTinyModel(.llama).blocks.count
        let plain = try lossAndGradients(.llama, checkpointing: false)
        let checkpointed = try lossAndGradients(.llama, checkpointing: true)
        XCTAssertEqual(checkpointed.recorded, layers + 2)  // blocks, final norm, cross-entropy
        XCTAssertGreaterThan(plain.recorded, layers * 10)
    }
}
