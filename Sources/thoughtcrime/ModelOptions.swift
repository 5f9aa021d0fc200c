import ArgumentParser
import Foundation
import LoRA
import Models
import Training

/// Options every command that runs a model shares.
struct ModelOptions: ParsableArguments {
    static let defaultModel = "checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf"

    @Option(name: .long, help: "GGUF file or Hugging Face model directory.")
    var model = ModelOptions.defaultModel

    @Option(name: .long, help: ArgumentHelp(
        "Keep frozen weights as 'float32', 'quantized' (GGUF blocks: least memory, fastest decoding), 'bf16' (native with AVX512_BF16, emulated elsewhere) or 'onednn-bf16' (oneDNN's AMX or AVX512_BF16 kernels, where it has them).",
        discussion: "Default: quantized for generate (decoding streams the weights once per token), float32 otherwise."))
    var weights: WeightStorage?

    @Option(name: .long, help: "LoRA adapter to apply: a PEFT directory, a run directory, a checkpoint .h5 or a llama.cpp LoRA .gguf (what `export` writes).")
    var adapter: String?

    /// The base model with `--weights` (or `defaultWeights` when absent), and `--adapter`
    /// attached when given.
    func load(defaultWeights: WeightStorage = .float32) throws -> LoadedModel {
        let loaded = try loadBase(path: model, weights: weights ?? defaultWeights)
        if let adapter { try attachAdapter(adapter, to: loaded) }
        return loaded
    }
}

func loadBase(path: String, weights: WeightStorage) throws -> LoadedModel {
    do {
        return try ModelLoader.load(path: path, weights: weights)
    } catch let error as ModelError {
        if case .io = error, path == ModelOptions.defaultModel {
            throw ValidationError("\(error)\nRun scripts/fetch-model.sh to fetch the default base model.")
        }
        throw error
    }
}

/// Reads any adapter the toolkit writes and attaches it to the model's layers.
@discardableResult
func attachAdapter(_ path: String, to loaded: LoadedModel) throws -> LoRAModel {
    let source = try AdapterSource.load(path: path, modelConfig: loaded.model.config)
    for warning in source.warnings { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
    if let trained = source.baseFingerprint, trained != loaded.fingerprint {
        // Same shapes, other weights (e.g. another quantisation of the base) can be intended.
        FileHandle.standardError.write(Data("warning: \(source.path) was trained on a base with fingerprint \(trained); \(loaded.path) has \(loaded.fingerprint)\n".utf8))
    }
    return try LoRAModel(attaching: source.weights, to: loaded.model)
}


extension WeightStorage: ExpressibleByArgument {}

/// Whether standard output is an interactive terminal.
var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}
