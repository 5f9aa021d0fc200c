// The reasoning-model-sized case of thoughtcrime-bench: a model of Qwen3-0.6B's shape with
// random weights, made in-process (nothing is downloaded) and saved as a Hugging Face folder so
// that scripts/bench/pytorch_baseline.py trains the very same weights.
import Foundation
import LoRA
import Models

enum Qwen3ShapedModel {
    /// Qwen3-0.6B's shape: 28 layers, hidden 1024, 16 query and 8 key/value heads of 128,
    /// FFN 3072, vocabulary 151936, tied embeddings, q/k RMSNorm.
    static let config = TransformerConfig(
        architecture: .qwen3, vocabSize: 151_936, hiddenSize: 1024, intermediateSize: 3072, layerCount: 28,
        headCount: 16, kvHeadCount: 8, headDim: 128, rmsNormEps: 1e-6, ropeBase: 1_000_000, contextLength: 4096,
        tiedEmbeddings: true)

    /// As transformers initialises Qwen3 (`initializer_range` 0.02, norms 1): the first loss is
    /// near ln 151936 = 11.9, as a real model's. The earlier fan-in uniform weights started at
    /// 84.6, logits no real model has, which made torch's fp32 baseline slow too.
    static let initialisation = RandomInitialisation.normal(standardDeviation: 0.02)
    /// Written beside the weights; a folder made with other weights is made again.
    static let marker = "normal std 0.02, norms 1, seed 1"

    /// Writes the model (seed 1) to `directory` unless a copy with these weights is already
    /// there; returns the path.
    static func ensure(at directory: String) throws -> String {
        let weights = (directory as NSString).appendingPathComponent("model.safetensors")
        let markerPath = (directory as NSString).appendingPathComponent("initialisation.txt")
        if FileManager.default.fileExists(atPath: weights),
           (try? String(contentsOfFile: markerPath, encoding: .utf8)) == marker {
            print("Qwen3-0.6B-shaped model with random weights: \(directory) (kept from an earlier run)")
            return directory
        }
        print("Qwen3-0.6B-shaped model with random weights (\(marker)): making it and saving it to \(directory) ...")
        let model = try TransformerModel.randomlyInitialised(config, seed: 1, initialisation: initialisation)
        try MergedModelWriter.writeHuggingFace(try LoadedModel(inMemory: model, name: "qwen3-0.6b-shaped-random"), to: directory)
        try marker.write(toFile: markerPath, atomically: true, encoding: .utf8)
        return directory
    }
}
