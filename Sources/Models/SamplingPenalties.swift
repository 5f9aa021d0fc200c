import Foundation

/// The tokens one sequence has seen, and the penalties `SamplingParameters` put on them.
///
/// - Repetition penalty (transformers' `RepetitionPenaltyLogitsProcessor`, llama.cpp's
///   `repeat_penalty`): every distinct token among the last `repetitionContextSize` tokens,
///   prompt included, has its logit divided by the penalty when positive and multiplied by it
///   when negative, so a penalty above 1 always makes it less likely.
/// - Presence and frequency penalties (OpenAI's): a token generated `c` times so far has
///   `presencePenalty + c * frequencyPenalty` subtracted from its logit. The prompt does not count.
///
/// Usage:
/// ```
/// var history = SamplingPenalties(prompt: ids, parameters: sampling)
/// history.apply(to: &row)          // before sampling
/// history.append(chosen)
/// ```
public struct SamplingPenalties: Sendable {
    public let parameters: SamplingParameters
    /// The latest tokens, prompt included, at most `repetitionContextSize`.
    private(set) var recent: [Int32]
    /// How often each generated token occurred.
    private(set) var generatedCounts: [Int32: Int] = [:]

    public init(prompt: [Int32], parameters: SamplingParameters) {
        self.parameters = parameters
        recent = Array(prompt.suffix(parameters.repetitionContextSize))
    }

    public mutating func append(_ token: Int32) {
        recent.append(token)
        if recent.count > parameters.repetitionContextSize { recent.removeFirst(recent.count - parameters.repetitionContextSize) }
        generatedCounts[token, default: 0] += 1
    }

    /// Applies the penalties to one row of logits (token ids index it; ids outside it are skipped).
    public func apply(to logits: UnsafeMutableBufferPointer<Float>) {
        let p = parameters
        if p.repetitionPenalty != 1 {
            for token in Set(recent) where Int(token) >= 0 && Int(token) < logits.count {
                let i = Int(token)
                logits[i] = logits[i] > 0 ? logits[i] / p.repetitionPenalty : logits[i] * p.repetitionPenalty
            }
        }
        if p.presencePenalty != 0 || p.frequencyPenalty != 0 {
            for (token, count) in generatedCounts where Int(token) >= 0 && Int(token) < logits.count {
                logits[Int(token)] -= p.presencePenalty + Float(count) * p.frequencyPenalty
            }
        }
    }
}
