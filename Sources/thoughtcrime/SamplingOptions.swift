import ArgumentParser
import Models

/// Sampling options of `generate` and `chat`, named as llama.cpp's and mlx-lm's.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0 = off).")
    var topK = 0

    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold (1 = off).")
    var topP: Float = 1

    @Option(name: .customLong("min-p"), help: "Drop tokens below min-p times the best token's probability (0 = off).")
    var minP: Float = 0

    @Option(help: "Random seed for sampling.")
    var seed: UInt64 = 0

    @Option(name: .customLong("repetition-penalty"), help: "Penalise tokens among the last --repetition-context-size (prompt included): logit / p if positive, * p if negative (1 = off; 1.1-1.3 is usual).")
    var repetitionPenalty: Float = 1

    @Option(name: .customLong("repetition-context-size"), help: "Tokens the repetition penalty looks back over.")
    var repetitionContextSize = 64

    @Option(name: .customLong("presence-penalty"), help: "OpenAI's presence penalty over generated tokens, -2...2 (0 = off).")
    var presencePenalty: Float = 0

    @Option(name: .customLong("frequency-penalty"), help: "OpenAI's frequency penalty over generated tokens, -2...2 (0 = off).")
    var frequencyPenalty: Float = 0

    func validate() throws {
        do { try parameters.validate() } catch { throw ValidationError("\(error)") }
    }

    var parameters: SamplingParameters {
        SamplingParameters(temperature: temperature, topK: topK, topP: topP, minP: minP, seed: seed,
                           repetitionPenalty: repetitionPenalty, repetitionContextSize: repetitionContextSize,
                           presencePenalty: presencePenalty, frequencyPenalty: frequencyPenalty)
    }
}
