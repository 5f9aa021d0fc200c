import ArgumentParser
import Evaluation
import Foundation

/// `thoughtcrime serve`: the model (and adapter) behind an OpenAI-compatible HTTP API.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the model (with --adapter) over an OpenAI-compatible HTTP API (docs/server.md).",
        discussion: "Endpoints: GET /v1/models, POST /v1/chat/completions (stream, n, logprobs, thinking), GET /health.")

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

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard defaultMaxTokens >= 1 else { throw ValidationError("--default-max-tokens must be >= 1") }
        guard maxChoices >= 1 else { throw ValidationError("--max-n must be >= 1") }
    }

    func run() throws {
        let loaded = try modelOptions.load(defaultWeights: .quantized)
        let name = servedModelName ?? [loaded.path, modelOptions.adapter].compactMap { $0 }
            .map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: "+")
        let server = try ChatCompletionServer(
            model: loaded, modelName: name, limits: ChatCompletionLimits(defaultMaxTokens: defaultMaxTokens, maximumChoices: maxChoices))
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
