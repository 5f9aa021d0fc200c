import Foundation
import Models
import Tokenizers

/// How much an evaluation will sample, and the memory its largest sampling batch needs,
/// computed from the config's counts before anything runs.
///
/// Every sample of one prompt is generated in one batch, and each sequence of a batch keeps a
/// KV cache for its prompt, reasoning and answer, so `samples_per_paraphrase` multiplies memory
/// directly: 1,000,000 samples of the default model would need terabytes. A run whose batch
/// cannot fit in the memory this process may use is refused with these figures instead of
/// dying in the allocator half-way.
///
/// Usage: `let estimate = EvalWorkEstimate(...); try estimate.requireFits()`
public struct EvalWorkEstimate: Equatable, CustomStringConvertible {
    /// Sampled answers over all models, questions, paraphrases and trigger settings.
    public var samples: Int
    /// Likelihood comparisons (one per reference question, paraphrase and trigger setting).
    public var likelihoodComparisons: Int
    /// Most tokens the sampling can generate (every sample running to both budgets).
    public var generatedTokensAtMost: Int
    /// Sequences in the largest sampling batch (the largest samples_per_paraphrase).
    public var largestBatch: Int
    /// Bytes that batch needs: KV caches at their grown capacity, plus two rows of logits each.
    public var largestBatchBytes: Int
    /// Bytes this process may still use, and what limits it.
    public var availableBytes: Int
    /// What limits `availableBytes` ("physical memory" or the address-space limit).
    public var availableSource: String

    /// One line for the user: samples, tokens, comparisons and the largest batch.
    public var description: String {
        "\(samples) samples (at most \(generatedTokensAtMost) generated tokens), \(likelihoodComparisons) likelihood comparisons; "
            + "largest sampling batch \(largestBatch) sequences, about \(Self.megabytes(largestBatchBytes)) MB"
    }

    /// Bytes of KV cache one sequence holds at `tokens` positions: the cache grows by doubling.
    static func cacheBytes(config: TransformerConfig, tokens: Int) -> Int {
        var capacity = 64
        while capacity < tokens { capacity *= 2 }
        return config.layerCount * 2 * config.kvHeadCount * config.headDim * capacity * MemoryLayout<Float>.size
    }

    /// Bytes one sampling batch of `sequences` takes for a prompt of `promptTokens`.
    static func batchBytes(config: TransformerConfig, sequences: Int, promptTokens: Int, thinkingBudget: Int, answerBudget: Int) -> Int {
        let perSequence = cacheBytes(config: config, tokens: promptTokens + thinkingBudget + answerBudget)
            + 2 * config.vocabSize * MemoryLayout<Float>.size
        let (product, overflow) = sequences.multipliedReportingOverflow(by: perSequence)
        return overflow ? Int.max : product
    }

    /// Throws when the largest batch needs more than this process may use.
    public func requireFits() throws {
        guard largestBatchBytes > availableBytes else { return }
        throw EvaluationError.tooLarge(
            "sampling \(largestBatch) answers of one prompt at once needs about \(Self.megabytes(largestBatchBytes)) MB "
                + "(their KV caches and logits), more than the \(Self.megabytes(availableBytes)) MB \(availableSource) leaves; "
                + "lower sampling.samples_per_paraphrase (or the suite's samples_per_paraphrase) or the budgets. In all: \(self)")
    }

    static func megabytes(_ bytes: Int) -> String { String(bytes / (1 << 20)) }

    /// The memory this process may still use: physical memory, or less under an address-space
    /// limit (`ulimit -v`), after what the process already maps.
    static func available() -> (bytes: Int, source: String) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var best = (bytes: Int(sysconf(Int32(_SC_PHYS_PAGES))) * page, source: "physical memory")
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            let mapped = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8))?
                .split(separator: " ").first.flatMap { Int($0) }.map { $0 * page } ?? 0
            let left = max(0, Int(clamping: limit.rlim_cur) - mapped)
            if left < best.bytes { best = (left, "the address-space limit (ulimit -v)") }
        }
        return best
    }
}
