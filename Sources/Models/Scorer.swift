import Autodiff
import Foundation
import Tensors

/// Log-probability of each token of a text under a model, given everything before it.
public struct TokenScore: Equatable, Sendable {
    public let position: Int
    public let id: Int32
    /// log p(id | tokens before it), natural log.
    public let logProbability: Float
    /// Rank of `id` among all tokens at this position (0 = most likely).
    public let rank: Int
}

/// Scores token sequences: per-token log-probabilities, as `thoughtcrime score`, the
/// likelihood judge and export checks use them.
///
/// Usage: `let scores = try Scorer(model: model).score(ids, from: promptLength)`
public struct Scorer {
    public let model: TransformerModel
    /// Positions whose full-vocabulary logits are formed at once; bounds memory to
    /// chunk x vocab floats.
    public var rowChunk = 64

    public init(model: TransformerModel) { self.model = model }

    /// Scores tokens[start...] (start >= 1: the first token has no prefix to condition on).
    public func score(_ tokens: [Int32], from start: Int = 1) throws -> [TokenScore] {
        guard start >= 1, start <= tokens.count else {
            throw ModelError.invalidInput("scoring start \(start) must be in 1...\(tokens.count)")
        }
        guard tokens.count <= model.config.contextLength else {
            throw ModelError.invalidInput("\(tokens.count) tokens exceed the model context of \(model.config.contextLength)")
        }
        let layout = try PackedSequences(batch: 1, seqLen: tokens.count)
        let hidden = try model.hiddenStates(Tape(recording: false), tokens: tokens, context: .packed(layout)).value
        let vocab = model.config.vocabSize
        var scores: [TokenScore] = []
        // row r's logits predict token r + 1
        let predicting = Array((start - 1)..<(tokens.count - 1))
        for chunkStart in stride(from: 0, to: predicting.count, by: rowChunk) {
            let rows = Array(predicting[chunkStart..<min(predicting.count, chunkStart + rowChunk)])
            let logits = model.logits(hidden: hidden, rows: rows)
            for (i, r) in rows.enumerated() {
                let row = UnsafeBufferPointer(start: logits.pointer + i * vocab, count: vocab)
                let target = tokens[r + 1]
                var m = -Float.infinity
                for x in row { m = max(m, x) }
                var sum = 0.0
                for x in row { sum += exp(Double(x - m)) }
                let t = row[Int(target)]
                let rank = row.reduce(0) { $0 + ($1 > t ? 1 : 0) }
                scores.append(TokenScore(position: r + 1, id: target, logProbability: Float(Double(t - m) - log(sum)), rank: rank))
            }
        }
        return scores
    }
}
