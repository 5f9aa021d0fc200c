import Autodiff
import Foundation
import Tensors

/// When a sequence stops growing.
public struct StopCriteria: Sendable {
    /// Token ids that end a sequence (EOS, <|im_end|>); they are not included in the output.
    public var tokenIDs: Set<Int32>
    /// Strings that end a sequence when the decoded output contains them; the output is cut
    /// before the string.
    public var strings: [String]
    public var maxNewTokens: Int
    /// Asked before each step: true ends every sequence there (`chat` stops a reply on Ctrl-C).
    public var interrupted: (@Sendable () -> Bool)?

    public init(tokenIDs: Set<Int32> = [], strings: [String] = [], maxNewTokens: Int = 128,
                interrupted: (@Sendable () -> Bool)? = nil) {
        self.tokenIDs = tokenIDs; self.strings = strings; self.maxNewTokens = maxNewTokens
        self.interrupted = interrupted
    }
}

/// A token id with its natural-log probability.
public struct TokenLogProbability: Equatable, Sendable {
    public var id: Int32
    public var logProbability: Float

    public init(id: Int32, logProbability: Float) {
        self.id = id
        self.logProbability = logProbability
    }
}

/// The log-probability of a generated token and the most likely alternatives at its position,
/// all from the model's distribution (log-softmax of the raw logits, before temperature and the
/// sampling filters; as OpenAI-compatible servers report them).
public struct GeneratedTokenLogProbabilities: Equatable, Sendable {
    /// The token that was chosen.
    public var chosen: TokenLogProbability
    /// The most likely tokens, most likely first (ties: lower id first); as many as requested.
    public var top: [TokenLogProbability]

    public init(chosen: TokenLogProbability, top: [TokenLogProbability]) {
        self.chosen = chosen
        self.top = top
    }

    /// Log-softmax of `logits` at `chosen` and the `topCount` most likely tokens.
    public static func from(_ logits: UnsafeBufferPointer<Float>, chosen: Int32, topCount: Int) -> GeneratedTokenLogProbabilities {
        var maximum = -Float.infinity
        for x in logits { maximum = max(maximum, x) }
        var sum = 0.0
        for x in logits { sum += exp(Double(x - maximum)) }
        let logNormaliser = Double(maximum) + log(sum)
        func logProbability(_ i: Int) -> Float { Float(Double(logits[i]) - logNormaliser) }
        // A sorted list of at most topCount indices, kept by insertion: topCount is small
        // (OpenAI allows 20), the vocabulary is not.
        var best: [Int] = []
        if topCount > 0 {
            best.reserveCapacity(topCount + 1)
            for i in 0..<logits.count {
                if best.count == topCount, let last = best.last, logits[i] <= logits[last] { continue }
                let position = best.firstIndex { logits[i] > logits[$0] } ?? best.count
                best.insert(i, at: position)
                if best.count > topCount { best.removeLast() }
            }
        }
        return GeneratedTokenLogProbabilities(
            chosen: TokenLogProbability(id: chosen, logProbability: logProbability(Int(chosen))),
            top: best.map { TokenLogProbability(id: Int32($0), logProbability: logProbability($0)) })
    }
}

/// One generated continuation.
public struct GenerationResult: Equatable, Sendable {
    /// Why a sequence ended; `interrupted` when `StopCriteria.interrupted` said so.
    public enum FinishReason: String, Sendable { case stopToken = "stop_token", stopString = "stop_string", length, interrupted }
    /// Generated ids, without the stop token.
    public var ids: [Int32]
    /// Decoded text, cut before a stop string (empty when no detokenizer was given).
    public var text: String
    public var finishReason: FinishReason
    /// One entry per id in `ids` when log-probabilities were requested; empty otherwise.
    public var logProbabilities: [GeneratedTokenLogProbabilities] = []
}

/// A token as generation streams it.
public struct GeneratedToken: Sendable {
    /// Index of the prompt (sequence) in the batch.
    public var sequence: Int
    public var id: Int32
    /// Present when log-probabilities were requested.
    public var logProbabilities: GeneratedTokenLogProbabilities?
}

/// Batched generation with per-sequence KV caches: prompts of different lengths are prefilled
/// together, then every live sequence advances one token per step.
///
/// Sequence i samples with its own generator seeded from (seed, i), so its output does not
/// depend on what else is in the batch.
///
/// Usage:
/// ```
/// let results = try Generator(model: model, detokenize: tok.decode).generate(
///     prompts: [ids], sampling: .greedy, stop: StopCriteria(tokenIDs: [2], maxNewTokens: 32))
/// ```
public struct Generator {
    public let model: TransformerModel
    public let detokenize: (([Int32]) -> String)?

    public init(model: TransformerModel, detokenize: (([Int32]) -> String)? = nil) {
        self.model = model
        self.detokenize = detokenize
    }

    /// Generates continuations of `prompts`; `onToken(sequence, id)` streams each new token.
    public func generate(
        prompts: [[Int32]], sampling: SamplingParameters, stop: StopCriteria,
        onToken: ((Int, Int32) -> Void)? = nil
    ) throws -> [GenerationResult] {
        try generate(prompts: prompts, sampling: sampling, stop: stop, topLogProbabilities: nil) { token in
            onToken?(token.sequence, token.id)
        }
    }

    /// Generates continuations of `prompts`, optionally with each generated token's
    /// log-probability and the `topLogProbabilities` most likely alternatives at its position
    /// (nil: none computed; 0: only the chosen token's). `onStep` streams each new token; the
    /// token that completes a stop string is not streamed (the output is cut before it) but is
    /// in the result's ids and log-probabilities.
    ///
    /// Usage:
    /// ```
    /// let results = try Generator(model: model, detokenize: decode).generate(
    ///     prompts: [ids], sampling: .greedy, stop: stop, topLogProbabilities: 5, onStep: nil)
    /// let firstTop = results[0].logProbabilities[0].top
    /// ```
    public func generate(
        prompts: [[Int32]], sampling: SamplingParameters, stop: StopCriteria, topLogProbabilities: Int?,
        onStep: ((GeneratedToken) -> Void)?
    ) throws -> [GenerationResult] {
        try sampling.validate()
        if let topLogProbabilities, topLogProbabilities < 0 {
            throw ModelError.invalidInput("top log-probabilities must be >= 0, got \(topLogProbabilities)")
        }
        guard stop.maxNewTokens >= 0 else { throw ModelError.invalidInput("max new tokens must be >= 0") }
        for (i, p) in prompts.enumerated() {
            guard !p.isEmpty else { throw ModelError.invalidInput("prompt \(i) is empty") }
            guard p.count + stop.maxNewTokens <= model.config.contextLength else {
                throw ModelError.invalidInput(
                    "prompt \(i) has \(p.count) tokens; with \(stop.maxNewTokens) new tokens it exceeds the context of \(model.config.contextLength)")
            }
        }
        let caches = prompts.map { model.makeCache(capacity: $0.count + stop.maxNewTokens) }
        var rngs = prompts.indices.map { SeededGenerator(seed: sampling.seed &+ UInt64($0) &* 0x9E37_79B9_7F4A_7C15) }
        var penalties = sampling.hasPenalties ? prompts.map { SamplingPenalties(prompt: $0, parameters: sampling) } : []
        // The penalised copy of a row; log-probabilities stay the model's own.
        var penalised = [Float](repeating: 0, count: sampling.hasPenalties ? model.config.vocabSize : 0)
        var results = prompts.map { _ in GenerationResult(ids: [], text: "", finishReason: .length) }
        var live = Array(prompts.indices)
        guard stop.maxNewTokens > 0 else { return results }

        // Prefill: every prompt at once; the logits of each prompt's last row pick its first token.
        var batchTokens = prompts.flatMap { $0 }
        var batchCaches = caches
        var counts = prompts.map(\.count)
        while !live.isEmpty {
            if let interrupted = stop.interrupted, interrupted() {
                for s in live { results[s].finishReason = .interrupted }
                break
            }
            let batch = try CachedBatch(caches: batchCaches, newTokens: counts)
            let hidden = try model.hiddenStates(Tape(recording: false), tokens: batchTokens, context: .cached(batch))
            var lastRows: [Int] = [], row = 0
            for n in counts { row += n; lastRows.append(row - 1) }
            let logits = model.logits(hidden: hidden.value, rows: lastRows)
            var stillLive: [Int] = []
            for (slot, s) in live.enumerated() {
                let vocab = model.config.vocabSize
                let row = UnsafeBufferPointer(start: logits.pointer + slot * vocab, count: vocab)
                let id: Int32
                if penalties.isEmpty {
                    id = Sampler.sample(row, parameters: sampling, rng: &rngs[s])
                } else {
                    id = penalised.withUnsafeMutableBufferPointer { buffer in
                        _ = buffer.initialize(from: row)
                        penalties[s].apply(to: buffer)
                        return Sampler.sample(UnsafeBufferPointer(buffer), parameters: sampling, rng: &rngs[s])
                    }
                    penalties[s].append(id)
                }
                if stop.tokenIDs.contains(id) {
                    results[s].finishReason = .stopToken
                    continue
                }
                results[s].ids.append(id)
                var tokenLogProbabilities: GeneratedTokenLogProbabilities?
                if let topLogProbabilities {
                    let computed = GeneratedTokenLogProbabilities.from(row, chosen: id, topCount: min(topLogProbabilities, vocab))
                    results[s].logProbabilities.append(computed)
                    tokenLogProbabilities = computed
                }
                if let detokenize, !stop.strings.isEmpty {
                    let text = detokenize(results[s].ids)
                    if let cut = stop.strings.compactMap({ text.range(of: $0)?.lowerBound }).min() {
                        results[s].text = String(text[..<cut])
                        results[s].finishReason = .stopString
                        continue
                    }
                }
                onStep?(GeneratedToken(sequence: s, id: id, logProbabilities: tokenLogProbabilities))
                if results[s].ids.count >= stop.maxNewTokens { continue }
                stillLive.append(s)
            }
            live = stillLive
            batchTokens = live.map { results[$0].ids.last ?? 0 }
            batchCaches = live.map { caches[$0] }
            counts = live.map { _ in 1 }
        }
        if let detokenize {
            for i in results.indices where results[i].finishReason != .stopString {
                results[i].text = detokenize(results[i].ids)
            }
        }
        return results
    }
}
