import ArgumentParser
import Foundation
import Models
import Tokenizers

/// `thoughtcrime score`: per-token log-probabilities under a model.
struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Per-token log-probabilities of a text, or of a completion after a chat prompt.")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "Text to score (every token after the first), unless --prompt and --completion are given.")
    var text: String?

    @Option(help: "User message; the completion is scored as the assistant's reply to it.")
    var prompt: String?

    @Option(help: "Assistant reply to score after --prompt.")
    var completion: String?

    @Option(help: "System message for --prompt (otherwise the template's default).")
    var system: String?

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let loaded = try modelOptions.load()
        let tokenizer = try loaded.requireTokenizer()
        let ids: [Int32], start: Int
        if let prompt, let completion {
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(.system, system)) }
            messages.append(ChatMessage(.user, prompt))
            let template = loaded.chatTemplate ?? .smolLM2
            let head = try template.renderTokens(messages, tokenizer: tokenizer, addGenerationPrompt: true).ids
            ids = head + tokenizer.encode(completion, addBOS: false)
            start = head.count
        } else if let text, prompt == nil, completion == nil {
            ids = tokenizer.encode(text)
            start = 1
        } else {
            throw ValidationError("give either a text, or both --prompt and --completion")
        }
        guard ids.count > start else { throw ValidationError("nothing to score: the text has fewer than two tokens") }
        let scores = try Scorer(model: loaded.model).score(ids, from: start)
        let total = scores.reduce(0.0) { $0 + Double($1.logProbability) }
        if json {
            try printJSON([
                "tokens": try scores.map { ["position": $0.position, "id": Int($0.id), "piece": try tokenizer.tokenPiece($0.id),
                                             "logprob": Double($0.logProbability), "rank": $0.rank] as [String: Any] },
                "total_logprob": total, "mean_logprob": total / Double(scores.count), "count": scores.count,
            ])
            return
        }
        for s in scores {
            print(String(format: "%5d %7d %10.4f  rank %-6d ", s.position, s.id, s.logProbability, s.rank) + (try tokenizer.tokenPiece(s.id)).debugDescription)
        }
        print(String(format: "total %.4f, mean %.4f over %d tokens (perplexity %.3f)", total, total / Double(scores.count), scores.count, exp(-total / Double(scores.count))))
    }
}
