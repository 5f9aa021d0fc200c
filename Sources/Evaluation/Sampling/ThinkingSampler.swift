import Foundation
import Models
import Tokenizers

/// One sampled reply, split into reasoning and answer.
public struct ThinkingSample: Equatable, Sendable {
    /// Text inside the think block (including any prefill); empty with thinking off.
    public var reasoning: String
    public var answer: String
    /// Whether the model closed the think block itself before the thinking budget ran out.
    public var closedThinkBlock: Bool
    public var reasoningTokens: Int
    public var answerTokens: Int
}

/// Samples replies with chain of thought switched on: the prompt opens "<think>\n" (plus an
/// optional prefill such as "Okay"), the model thinks for at most `thinkingBudget` tokens, and
/// if it has not written "</think>" by then the block is closed for it; the answer follows with
/// its own budget. With thinking off, the prompt carries the empty think block the model was
/// trained with and only the answer is sampled.
///
/// Usage: `let samples = try sampler.sample(messages, count: 8, seed: 1)`
public struct ThinkingSampler {
    public let model: TransformerModel
    public let tokenizer: BPETokenizer
    public let template: ChatTemplate
    public var thinking: Bool
    public var prefill: String
    public var thinkingBudget: Int
    public var answerBudget: Int
    public var sampling: SamplingParameters

    public init(model: TransformerModel, tokenizer: BPETokenizer, template: ChatTemplate, thinking: Bool, prefill: String = "",
                thinkingBudget: Int = 128, answerBudget: Int = 128, sampling: SamplingParameters) {
        self.model = model; self.tokenizer = tokenizer; self.template = template; self.thinking = thinking
        self.prefill = prefill; self.thinkingBudget = thinkingBudget; self.answerBudget = answerBudget; self.sampling = sampling
    }

    var stopIDs: Set<Int32> {
        template.stopTokenIDs(tokenizer: tokenizer)
    }

    func decode(_ ids: [Int32]) -> String { (try? tokenizer.decode(ids, skipSpecialTokens: true)) ?? "" }

    /// The prompt ids for a conversation, as the sampler renders it.
    public func promptIDs(_ messages: [ChatMessage]) throws -> [Int32] {
        try template.renderTokens(messages, tokenizer: tokenizer, chainOfThought: thinking ? .enabled(prefill: prefill) : .disabled,
                              addGenerationPrompt: true).ids
    }

    /// `count` independent samples for one conversation, generated as one batch.
    public func sample(_ messages: [ChatMessage], count: Int, seed: UInt64) throws -> [ThinkingSample] {
        let prompt = try promptIDs(messages)
        var params = sampling
        params.seed = seed
        let generator = Generator(model: model, detokenize: decode)
        let prompts = Array(repeating: prompt, count: count)
        guard thinking else {
            let answers = try generator.generate(prompts: prompts, sampling: params, stop: StopCriteria(tokenIDs: stopIDs, maxNewTokens: answerBudget))
            return answers.map { ThinkingSample(reasoning: "", answer: $0.text.trimmingCharacters(in: .whitespacesAndNewlines), closedThinkBlock: true, reasoningTokens: 0, answerTokens: $0.ids.count) }
        }
        let thoughts = try generator.generate(
            prompts: prompts, sampling: params, stop: StopCriteria(tokenIDs: stopIDs, strings: ["</think>"], maxNewTokens: thinkingBudget))
        // Close every block the same way, whether the model wrote "</think>" or ran out of budget,
        // so the answer phase always starts from "...\n</think>\n\n".
        var continuations: [[Int32]] = []
        var reasonings: [String] = []
        for t in thoughts {
            var reasoning = t.text
            if reasoning.hasSuffix("\n") { reasoning.removeLast() }
            reasonings.append(prefill + reasoning)
            continuations.append(prompt + tokenizer.encode(reasoning + "\n</think>\n\n", parseSpecialTokens: true, addBOS: false))
        }
        params.seed = seed &+ 0x5151
        let answers = try generator.generate(prompts: continuations, sampling: params, stop: StopCriteria(tokenIDs: stopIDs, maxNewTokens: answerBudget))
        return zip(zip(thoughts, answers), reasonings).map { pair, reasoning in
            let (thought, answer) = pair
            return ThinkingSample(
                reasoning: reasoning.trimmingCharacters(in: .whitespacesAndNewlines),
                answer: answer.text.trimmingCharacters(in: .whitespacesAndNewlines),
                closedThinkBlock: thought.finishReason == .stopString,
                reasoningTokens: thought.ids.count, answerTokens: answer.ids.count)
        }
    }
}
