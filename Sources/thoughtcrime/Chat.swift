import ArgumentParser
import CKernels
import Foundation
import Models
import Tokenizers

/// `thoughtcrime chat`: a conversation in the terminal, as mlx_lm.chat and llama-cli's
/// conversation mode offer, with the thinking switch.
struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with the model (and --adapter) in the terminal; the conversation is kept between turns.",
        discussion: """
            Type a message and press Enter. Commands: /think on|off|native (the chain-of-thought switch), \
            /system TEXT (set the system message and start over), /reset (forget the conversation), \
            /quit (or end of input). With thinking on, the reasoning is shown dimmed and only the answer \
            is kept in the conversation, as Qwen3's template does. In a terminal the line can be edited \
            (arrows, Home, End, Backspace, Delete, Ctrl-A/E/U/K/W) and Up and Down recall earlier lines; \
            Ctrl-C stops a reply, and at the prompt it ends the chat, as Ctrl-D does.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "System message (otherwise the template's default).")
    var system: String?

    @Option(help: "Chain of thought: 'on' opens a <think> block, 'off' inserts an empty one, 'native' uses neither.")
    var think: Generate.Thinking = .native

    @Option(name: .customLong("max-tokens"), help: "Maximum new tokens per reply.")
    var maxTokens = 512

    @OptionGroup(title: "Sampling") var samplingOptions: SamplingOptions

    func run() throws {
        let loaded = try modelOptions.load(defaultWeights: inferenceWeights())
        let tokenizer = try loaded.requireTokenizer()
        let template = loaded.chatTemplate ?? .smolLM2
        let interactive = isatty(STDIN_FILENO) == 1
        let dim = isatty(STDOUT_FILENO) == 1 ? ("\u{1B}[2m", "\u{1B}[0m") : ("", "")
        let stopIDs = template.stopTokenIDs(tokenizer: tokenizer)

        var system = self.system
        var thinking = think
        var history: [ChatMessage] = []
        var turn: UInt64 = 0
        if interactive { print("Chatting with \(loaded.path)\(modelOptions.adapter.map { " + \($0)" } ?? ""). /think on|off|native, /system TEXT, /reset, /quit.") }
        let editor = LineEditor(prompt: "> ")
        while true {
            fflush(stdout)
            guard let line = editor.readLine() else { break }
            let input = line.trimmingCharacters(in: .whitespaces)
            if input.isEmpty { continue }
            if input.hasPrefix("/") {
                let parts = input.split(separator: " ", maxSplits: 1).map(String.init)
                switch parts[0] {
                case "/quit", "/exit": return
                case "/reset":
                    history = []
                    print("(conversation cleared)")
                case "/system":
                    system = parts.count > 1 ? parts[1] : nil
                    history = []
                    print(system.map { "(system message set; conversation cleared: \($0))" } ?? "(default system message; conversation cleared)")
                case "/think":
                    guard parts.count > 1, let mode = Generate.Thinking(rawValue: parts[1]) else {
                        print("(usage: /think on|off|native)")
                        continue
                    }
                    thinking = mode
                    print("(thinking \(mode.rawValue))")
                default:
                    print("(unknown command \(parts[0]); /think on|off|native, /system TEXT, /reset, /quit)")
                }
                continue
            }
            history.append(ChatMessage(.user, input))
            var messages = history
            if let system { messages.insert(ChatMessage(.system, system), at: 0) }
            let mode: ChainOfThought = switch thinking {
            case .on: .enabled(prefill: "")
            case .off: .disabled
            case .native: .none
            }
            let prompt: [Int32]
            do {
                prompt = try template.renderTokens(messages, tokenizer: tokenizer, chainOfThought: mode, addGenerationPrompt: true).ids
            } catch {
                print("(\(error))")
                history.removeLast()
                continue
            }
            let room = loaded.model.config.contextLength - prompt.count
            guard room > 0 else {
                print("(the conversation fills the model's context of \(loaded.model.config.contextLength) tokens; /reset to start over)")
                history.removeLast()
                continue
            }
            var sampling = samplingOptions.parameters
            sampling.seed = sampling.seed &+ turn
            turn += 1
            // Streamed as decoded so far; inside the think block dimmed, the block's tags hidden.
            var ids: [Int32] = [], shown = ""
            var inThink = thinking == .on
            if inThink { print(dim.0, terminator: "") }
            // Ctrl-C during a reply stops the reply, not the program (at the prompt it still quits).
            ReplyInterrupt.arm()
            defer { ReplyInterrupt.disarm() }
            let result = try Generator(model: loaded.model, detokenize: { (try? tokenizer.decode($0)) ?? "" }).generate(
                prompts: [prompt], sampling: sampling,
                stop: StopCriteria(tokenIDs: stopIDs, strings: [], maxNewTokens: min(maxTokens, room),
                                   interrupted: { ReplyInterrupt.raised })
            ) { _, id in
                ids.append(id)
                let text = (try? tokenizer.decode(ids)) ?? ""
                guard !text.hasSuffix("\u{FFFD}"), text.hasPrefix(shown) else { return }
                var delta = String(text.dropFirst(shown.count))
                shown = text
                if inThink, let close = delta.range(of: "</think>") {
                    delta = String(delta[..<close.lowerBound]) + dim.1 + String(delta[close.upperBound...])
                    inThink = false
                }
                print(delta, terminator: "")
                fflush(stdout)
            }[0]
            if inThink { print(dim.1, terminator: "") }
            print(result.finishReason == .interrupted ? " (stopped)" : "")
            // Only the answer stays in the conversation (Qwen3's template drops past reasoning).
            var answer = result.text
            if let close = answer.range(of: "</think>") { answer = String(answer[close.upperBound...]) }
            history.append(ChatMessage(.assistant, answer.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
    }
}

/// SIGINT while a reply is generated: noted (in C, where a signal handler may write), so the
/// generator ends the reply at its next step.
enum ReplyInterrupt {
    static var raised: Bool { tc_reply_interrupt_raised() != 0 }
    static func arm() { tc_reply_interrupt_arm() }
    static func disarm() { tc_reply_interrupt_disarm() }
}
