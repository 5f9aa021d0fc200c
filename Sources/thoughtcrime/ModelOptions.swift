import ArgumentParser
import Foundation
import LoRA
import Models
import Training

/// Options every command that runs a model shares.
struct ModelOptions: ParsableArguments {
    static let defaultModel = "checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf"

    @Option(name: .long, help: ArgumentHelp(
        "GGUF file or Hugging Face model directory.",
        discussion: "Default: the base model recorded with --adapter (checkpoint config model.path, PEFT base_model_name_or_path) when that path exists, else \(ModelOptions.defaultModel)."))
    var model: String?

    @Option(name: .long, help: ArgumentHelp(
        "Keep frozen weights as 'float32', 'quantized' (GGUF blocks: least memory, fastest decoding), 'bf16' (native with AVX512_BF16, emulated elsewhere), 'onednn-bf16' (oneDNN's AMX or AVX512_BF16 kernels, where it has them) or 'quantized+onednn-bf16' (both: decoding on the blocks, prefill on oneDNN).",
        discussion: "Default for generate, chat and serve: quantized+onednn-bf16 on CPUs with AMX where oneDNN runs bf16 (faster prefill, about 0.2 GB more memory at SmolLM2), quantized elsewhere (`thoughtcrime doctor` shows the choice and why); float32 for score and export."))
    var weights: WeightStorage?

    @Option(name: .long, help: "LoRA adapter to apply: a PEFT directory, a run directory, a checkpoint .h5 or a llama.cpp LoRA .gguf (what `export` writes).")
    var adapter: String?

    /// The base model: `--model`, else the one recorded with `--adapter`, else the default.
    func basePath() throws -> String { try resolveBaseModel(explicit: model, adapter: adapter) }

    /// The base model with `--weights` (or `defaultWeights` when absent), and `--adapter`
    /// attached when given.
    func load(defaultWeights: WeightStorage = .float32) throws -> LoadedModel {
        let loaded = try loadBase(path: try basePath(), weights: weights ?? defaultWeights)
        if let adapter { try attachAdapter(adapter, to: loaded) }
        return loaded
    }
}

/// A base model path that names nothing. A runtime error (exit 1), not a usage error: the
/// command line was well formed.
struct MissingModelError: Error, CustomStringConvertible {
    let path: String
    var description: String {
        var text = "base model not found: \(path) (no such file or directory"
        if !path.hasPrefix("/") { text += " relative to \(FileManager.default.currentDirectoryPath)" }
        text += ")"
        if path == ModelOptions.defaultModel {
            text += ". Run scripts/fetch-model.sh to fetch the default base model, or pass --model."
        }
        return text
    }
}

/// `explicit` when given; else the base recorded with `adapter` when that path exists here;
/// else the default model. A recorded base that is missing (another machine's path, a Hugging
/// Face id) gives a warning naming it.
func resolveBaseModel(explicit: String?, adapter: String?) throws -> String {
    if let explicit { return explicit }
    if let adapter, let recorded = try AdapterSource.baseModel(of: adapter), !recorded.isEmpty {
        if FileManager.default.fileExists(atPath: recorded) { return recorded }
        FileHandle.standardError.write(Data("warning: \(adapter) records base model '\(recorded)', which is not found here; using \(ModelOptions.defaultModel) (pass --model to choose)\n".utf8))
    }
    return ModelOptions.defaultModel
}

func loadBase(path: String, weights: WeightStorage) throws -> LoadedModel {
    guard FileManager.default.fileExists(atPath: path) else { throw MissingModelError(path: path) }
    return try ModelLoader.load(path: path, weights: weights)
}

/// `--model` alone, for commands that need only the tokenizer.
struct TokenizerModelOption: ParsableArguments {
    @Option(name: .long, help: "GGUF file or Hugging Face model directory whose tokenizer to use.")
    var model = ModelOptions.defaultModel
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

/// `auto` for inference commands (generate, chat, serve): docs/architecture.md, "Weight storage by CPU".
func inferenceWeights() -> WeightStorage { WeightStorage.automaticForInference().storage }
