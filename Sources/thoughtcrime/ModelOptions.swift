import ArgumentParser
import Foundation
import Models

/// Options every command that runs a model shares.
struct ModelOptions: ParsableArguments {
    static let defaultModel = "checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf"

    @Option(name: .long, help: "GGUF file or Hugging Face model directory.")
    var model = ModelOptions.defaultModel

    @Option(name: .long, help: ArgumentHelp(
        "Keep frozen weights as 'float32' or 'quantized' (GGUF blocks: least memory, fastest decoding).",
        discussion: "Default: quantized for generate (decoding streams the weights once per token), float32 otherwise."))
    var weights: WeightStorage?

    /// Loads the model with `--weights`, or `defaultWeights` when the option is absent.
    func load(defaultWeights: WeightStorage = .float32) throws -> LoadedModel {
        do {
            return try ModelLoader.load(path: model, weights: weights ?? defaultWeights)
        } catch let error as ModelError {
            if case .io = error, model == ModelOptions.defaultModel {
                throw ValidationError("\(error)\nRun scripts/fetch-model.sh to fetch the default base model.")
            }
            throw error
        }
    }
}

extension WeightStorage: ExpressibleByArgument {}

/// Whether standard output is an interactive terminal.
var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}
