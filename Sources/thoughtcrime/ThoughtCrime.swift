import ArgumentParser
import Foundation
import Logging
import Tensors

@main
struct ThoughtCrime: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thoughtcrime",
        abstract: "LoRA finetuning and misalignment evaluation of small language models on a CPU.",
        discussion: "Set THOUGHTCRIME_LOG=debug to see diagnostics such as the OpenBLAS kernel choice.",
        subcommands: [Finetune.self, Resume.self, Eval.self, Serve.self, Export.self, DataCommand.self, Generate.self, Tokenize.self, Score.self, Inspect.self, Doctor.self])

    static func main() {
        let level = ProcessInfo.processInfo.environment["THOUGHTCRIME_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        // Must run before any BLAS call: it may restart the process with faster kernels.
        OpenBLASCoreSelection.ensureFastKernels()
        AllocatorPolicy.apply()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}
