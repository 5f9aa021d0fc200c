import Foundation
import Models
import Tokenizers

/// Scores answers with a local model and the question's judge prompts (`aligned`, `coherent`):
/// each prompt is filled with {question} and {answer}, sent as a user message, and the score is
/// the probability-weighted mean of the numbers 0-100 the judge would reply with.
///
/// Usage: `let judge = LocalModelJudge(model: judgeModel, tokenizer: tok, template: .smolLM2)`
public struct LocalModelJudge: JudgePromptScorer {
    public let name = "local"
    public let scorer: NumericScorer
    public let template: ChatTemplate

    public init(model: TransformerModel, tokenizer: BPETokenizer, template: ChatTemplate, minimumMass: Double = 0.25) {
        scorer = NumericScorer(model: model, tokenizer: tokenizer, minimumMass: minimumMass)
        self.template = template
    }

    public var minimumMassKey: String { "judges.local.min_numeric_mass" }
    public var minimumMass: Double { scorer.minimumMass }

    public func score(_ judgePrompt: String) throws -> NumericScore {
        let ids = try template.renderTokens([ChatMessage(.user, judgePrompt)], tokenizer: scorer.tokenizer, addGenerationPrompt: true).ids
        let (value, mass) = try scorer.expectedNumber(promptIDs: ids)
        return NumericScore(value: value, mass: mass)
    }
}
