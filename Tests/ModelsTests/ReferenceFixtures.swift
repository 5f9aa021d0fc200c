import Foundation
import XCTest

/// Locations of committed fixtures and of the fetched base model.
enum Fixtures {
    static var directory: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    }

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static func json<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: url(name)))
    }

    /// The real SmolLM2 GGUF under <package root>/checkpoints/base, or a skip saying how to get it.
    static func smolLM2() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("base model not found at \(path): run scripts/fetch-model.sh to fetch the base model")
        }
        return path
    }
}

/// tiny-*/logits.json: full logits of tiny random models computed by transformers.
struct TinyLogitsFixture: Decodable {
    struct Sequence: Decodable {
        let input_ids: [Int32]
        let logits: [[Float]]
    }
    let vocab_size: Int
    let sequences: [Sequence]
}

/// smollm2_logits.json: top-10 logits and log-sum-exp per position from transformers.
struct SmolLM2LogitsFixture: Decodable {
    struct Prompt: Decodable {
        let name: String
        let input_ids: [Int32]
        let top_ids: [[Int32]]
        let top_logits: [[Float]]
        let logsumexp: [Double]
        let next_token_logits: [Float]
    }
    let prompts: [Prompt]
}

/// smollm2_greedy.json: greedy continuations from transformers' generate.
struct SmolLM2GreedyFixture: Decodable {
    struct Generation: Decodable {
        let prompt_ids: [Int32]
        let generated_ids: [Int32]
        let generated_text: String
        let stopped_at_eos: Bool
    }
    let eos_token_ids: [Int32]
    let max_new_tokens: Int
    let generations: [Generation]
}
