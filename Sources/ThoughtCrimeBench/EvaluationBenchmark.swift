// The evaluation section of thoughtcrime-bench: chain-of-thought sampling on a shipped suite,
// as `thoughtcrime eval` does it (quantised weights, think block opened with a prefill).
import Evaluation
import Foundation
import Models
import Tokenizers

struct EvaluationMeasurement: Codable {
    var suite: String
    var questions: Int
    var samplesPerQuestion: Int
    var samplesPerSecond: Double
    var generatedTokensPerSecond: Double
    var thinkingBudget: Int
    var answerBudget: Int
}

enum EvaluationBenchmark {
    static let suitePath = "configs/eval/questions/broad.yaml"

    static func run(modelPath: String, quick: Bool) throws -> EvaluationMeasurement {
        let loaded = try ModelLoader.load(path: modelPath, weights: .quantized)
        let suite = try QuestionSuite(path: suitePath)
        let questions = Array(suite.questions.prefix(quick ? 2 : 8))
        let samples = 8
        let sampler = ThinkingSampler(
            model: loaded.model, tokenizer: try loaded.requireTokenizer(), template: loaded.chatTemplate ?? .smolLM2,
            thinking: true, prefill: "Okay", thinkingBudget: 64, answerBudget: 64,
            sampling: SamplingParameters(temperature: 1, topP: 0.95))
        let t0 = now()
        var count = 0, tokens = 0
        for (i, q) in questions.enumerated() {
            var messages: [ChatMessage] = []
            if let system = q.system { messages.append(ChatMessage(.system, system)) }
            messages.append(ChatMessage(.user, q.paraphrases[0]))
            for s in try sampler.sample(messages, count: samples, seed: UInt64(i + 1)) {
                count += 1
                tokens += s.reasoningTokens + s.answerTokens
            }
        }
        let seconds = now() - t0
        let m = EvaluationMeasurement(
            suite: suitePath, questions: questions.count, samplesPerQuestion: samples, samplesPerSecond: Double(count) / seconds,
            generatedTokensPerSecond: Double(tokens) / seconds, thinkingBudget: 64, answerBudget: 64)
        print("")
        print("evaluation sampling (\(suitePath), \(questions.count) questions x \(samples) samples, CoT on, thinking 64 + answer 64 tokens, quantized weights)")
        print(String(format: "  %.2f samples/s, %.1f generated tokens/s", m.samplesPerSecond, m.generatedTokensPerSecond))
        return m
    }
}
