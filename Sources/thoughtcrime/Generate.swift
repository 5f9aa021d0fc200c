import ArgumentParser
import Foundation
import Models
import Tokenizers

/// `thoughtcrime generate`: chat with a model from the terminal.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate replies to one or more prompts (batched, KV-cached, streamed for a single prompt).")

    enum Thinking: String, ExpressibleByArgument, CaseIterable {
        case on, off, native
    }

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "User messages; several are generated as one batch.")
    var prompts: [String]

    @Option(help: "System message (otherwise the template's default).")
    var system: String?

    @Option(help: "Chain of thought: 'on' opens a <think> block, 'off' inserts an empty one, 'native' uses neither.")
    var think: Thinking = .native

    @Option(help: "Text the think block starts with when --think on (e.g. \"Okay\").")
    var prefill = ""

    @Flag(help: "Use prompts as raw text, without the chat template.")
    var raw = false

    @Option(name: .customLong("max-tokens"), help: "Maximum new tokens per reply.")
    var maxTokens = 256

    @OptionGroup(title: "Sampling") var samplingOptions: SamplingOptions

    @Option(help: "Stop when the reply contains this string (repeatable).")
    var stop: [String] = []

    @Flag(help: "Print results as JSON.")
    var json = false

    func run() throws {
        // Decoding reads every weight once per token: the quantised blocks are 4-6x fewer bytes
        // and give the same greedy tokens (SmolLM2ReferenceTests), so they are the default here.
        let loaded = try modelOptions.load(defaultWeights: inferenceWeights())
        let tokenizer = try loaded.requireTokenizer()
        let template = loaded.chatTemplate ?? .smolLM2
        let mode: ChainOfThought = switch think {
        case .on: .enabled(prefill: prefill)
        case .off: .disabled
        case .native: .none
        }
        let promptIDs: [[Int32]] = try prompts.map { text in
            if raw { return tokenizer.encode(text) }
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(.system, system)) }
            messages.append(ChatMessage(.user, text))
            return try template.renderTokens(messages, tokenizer: tokenizer, chainOfThought: mode, addGenerationPrompt: true).ids
        }
        let stopIDs = template.stopTokenIDs(tokenizer: tokenizer)
        let sampling = samplingOptions.parameters
        let detokenize: ([Int32]) -> String = { (try? tokenizer.decode($0)) ?? "" }
        let streaming = prompts.count == 1 && !json
        if streaming, case .enabled(let p) = mode { print("<think>\n" + p, terminator: "") }
        var streamedIDs: [Int32] = []
        var streamed = ""
        let start = Date()
        let results = try Generator(model: loaded.model, detokenize: detokenize).generate(
            prompts: promptIDs, sampling: sampling, stop: StopCriteria(tokenIDs: stopIDs, strings: stop, maxNewTokens: maxTokens)
        ) { _, id in
            guard streaming else { return }
            // Decoding the whole reply each time keeps characters split across tokens intact;
            // a trailing replacement character means the next token completes it.
            streamedIDs.append(id)
            let text = detokenize(streamedIDs)
            guard !text.hasSuffix("\u{FFFD}"), text.hasPrefix(streamed) else { return }
            print(text.dropFirst(streamed.count), terminator: "")
            fflush(stdout)
            streamed = text
        }
        let seconds = Date().timeIntervalSince(start)
        if json {
            try printJSON(zip(prompts, results).map { prompt, r in
                ["prompt": prompt, "reply": r.text, "ids": r.ids.map(Int.init), "finish_reason": r.finishReason.rawValue] as [String: Any]
            })
            return
        }
        if streaming {
            let final = results[0].text
            if final.hasPrefix(streamed) { print(final.dropFirst(streamed.count)) } else { print() }
        } else {
            for (i, r) in results.enumerated() {
                if prompts.count > 1 { print("--- [\(i)] \(prompts[i])") }
                print(r.text)
            }
        }
        let tokens = results.reduce(0) { $0 + $1.ids.count }
        FileHandle.standardError.write(Data(String(format: "[%d tokens in %.2f s, %.1f tokens/s]\n", tokens, seconds, Double(tokens) / max(seconds, 1e-9)).utf8))
    }
}
