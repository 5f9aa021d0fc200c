import ArgumentParser
import Evaluation
import Foundation
import LoRA
import Training

/// `thoughtcrime serve`: the model (and adapter) behind an OpenAI-compatible HTTP API.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the model (with --adapter) over an OpenAI-compatible HTTP API (docs/server.md).",
        discussion: "Endpoints: GET /v1/models, POST /v1/chat/completions (stream, n, logprobs, thinking), POST /v1/completions, GET /health. With --lora NAME=PATH, a request's model chooses the adapter.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Address to bind; the default accepts connections from this machine only.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one (printed on start).")
    var port = 8080

    @Option(name: .customLong("served-model-name"), help: "Model id reported by /v1/models and in responses (default: the file names).")
    var servedModelName: String?

    @Option(name: .customLong("default-max-tokens"), help: "New tokens per reply when a request sets no max_tokens.")
    var defaultMaxTokens = 512

    @Option(name: .customLong("max-n"), help: "Largest number of choices (n) per request.")
    var maxChoices = 16

    @Option(name: .customLong("lora"), help: ArgumentHelp(
        "An adapter requests can choose, as NAME=PATH (repeatable): a request whose model is NAME is answered by the base with that adapter.",
        discussion: "Each is attached for its request only; the base answers requests that name it (or no model). Not with --adapter."))
    var loras: [String] = []

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard defaultMaxTokens >= 1 else { throw ValidationError("--default-max-tokens must be >= 1") }
        guard maxChoices >= 1 else { throw ValidationError("--max-n must be >= 1") }
        if !loras.isEmpty && modelOptions.adapter != nil {
            throw ValidationError("--adapter fixes one adapter for every request; with --lora, give that one as --lora NAME=PATH too and requests choose")
        }
        for item in loras where !(item.contains("=") && !item.hasPrefix("=")) {
            throw ValidationError("--lora expects NAME=PATH, got '\(item)'")
        }
    }

    func run() throws {
        let loaded = try modelOptions.load(defaultWeights: inferenceWeights())
        let name = servedModelName ?? [loaded.path, modelOptions.adapter].compactMap { $0 }
            .map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: "+")
        var adapters: [String: LoRAWeights] = [:]
        for item in loras {
            guard let eq = item.firstIndex(of: "=") else { throw ValidationError("--lora expects NAME=PATH, got '\(item)'") }
            let adapterName = String(item[..<eq]), path = String(item[item.index(after: eq)...])
            guard adapterName != name, adapters[adapterName] == nil else { throw ValidationError("--lora: the name '\(adapterName)' is used twice") }
            let source = try AdapterSource.load(path: path, modelConfig: loaded.model.config)
            for warning in source.warnings { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
            // Attached once here so that a mismatched adapter fails at start, not on a request.
            try LoRAModel(attaching: source.weights, to: loaded.model).detach()
            adapters[adapterName] = source.weights
        }
        let server = try ChatCompletionServer(
            model: loaded, modelName: name, adapters: adapters, limits: ChatCompletionLimits(defaultMaxTokens: defaultMaxTokens, maximumChoices: maxChoices))
        let host = host
        let failure = ServeFailure()
        let finished = DispatchSemaphore(value: 0)
        Task {
            do {
                try await server.run(host: host, port: port) { boundPort in
                    // One line scripts can wait for; the port matters when --port 0 picked it.
                    print("Serving \(name) at http://\(host):\(boundPort)/v1 (OpenAI-compatible)")
                    fflush(stdout)
                }
            } catch {
                failure.error = error
            }
            finished.signal()
        }
        finished.wait()
        if let error = failure.error { throw error }
    }
}

private final class ServeFailure: @unchecked Sendable {
    var error: Error?
}
