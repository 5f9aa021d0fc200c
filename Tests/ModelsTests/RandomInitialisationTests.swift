import Autodiff
import Models
import Tensors
import XCTest

/// The benchmark's reasoning-model case starts as transformers starts a new model; the old
/// fan-in uniform weights, whose logits spread far beyond a real model's, are kept for the
/// subnormal regression test.
final class RandomInitialisationTests: XCTestCase {
    let config = TransformerConfig(
        architecture: .qwen3, vocabSize: 2000, hiddenSize: 64, intermediateSize: 128, layerCount: 2,
        headCount: 4, kvHeadCount: 2, headDim: 16, rmsNormEps: 1e-6, ropeBase: 1_000_000, contextLength: 64,
        tiedEmbeddings: true)

    func firstLoss(_ initialisation: RandomInitialisation) throws -> Float {
        let model = try TransformerModel.randomlyInitialised(config, seed: 1, initialisation: initialisation)
        let tokens = (0..<32).map { Int32(($0 * 37 + 11) % 2000) }
        let targets = Array(tokens.dropFirst()) + [Tape.ignoreIndex]
        let loss = try model.loss(Tape(recording: false), tokens: tokens, targets: targets, layout: try PackedSequences(batch: 1, seqLen: 32))
        return loss.loss.value[flat: 0]
    }

    func testTransformersInitialisationStartsNearTheUniformLoss() throws {
        XCTAssertEqual(try firstLoss(.normal(standardDeviation: 0.02)), log(2000), accuracy: 0.05)
    }

    func testTransformersInitialisationHasUnitNormsAndNoBiasScale() throws {
        let model = try TransformerModel.randomlyInitialised(config, seed: 1, initialisation: .normal(standardDeviation: 0.02))
        XCTAssertEqual(Set(model.blocks[0].attentionNorm.weight.value.scalars), [1])
        let q = model.blocks[0].attention.q.weight as! DenseMatrix
        let values = q.tensor.scalars
        let mean = values.reduce(0, +) / Float(values.count)
        let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.002)
        XCTAssertEqual(std, 0.02, accuracy: 0.001)
    }

    func testFanInUniformWeightsGiveTheLargeLogitsOfTheRegressionCase() throws {
        XCTAssertGreaterThan(try firstLoss(.uniformFanIn), 2 * log(2000))
    }
}
