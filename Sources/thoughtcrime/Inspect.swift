import ArgumentParser
import ModelFormats

/// `thoughtcrime inspect`: what a weight file contains.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise a GGUF file, a safetensors file or model directory.")

    @Argument(help: "The file or directory to inspect.")
    var path: String

    @Option(name: .customLong("max-tensors"), help: "How many tensors to list.")
    var maxTensors = 40

    func run() throws {
        for line in try FileSummary(path: path).lines(maxTensors: maxTensors) { print(line) }
    }
}
