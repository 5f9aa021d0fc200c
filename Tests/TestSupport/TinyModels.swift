import Foundation
import ModelFormats
import Models
import Tensors

/// Small models for tests: a complete GGUF file (Llama, byte-level tokenizer, SmolLM2's chat
/// template) that exercises the real loading path in milliseconds, and in-memory random models.
public enum TinyModelFile {
    /// GPT-2's byte-to-symbol map: printable bytes stand for themselves, the rest are shifted
    /// past 255 so every byte has a visible symbol.
    public static var byteSymbols: [String] {
        let visible = Set(Array(33...126) + Array(161...172) + Array(174...255))
        var symbols = [Int](repeating: 0, count: 256)
        var next = 256
        for b in 0..<256 {
            if visible.contains(b) { symbols[b] = b } else { symbols[b] = next; next += 1 }
        }
        return symbols.compactMap { UnicodeScalar(UInt32($0)).map { String($0) } }
    }

    /// Writes the tiny Llama GGUF; different seeds give different weights (and fingerprints).
    public static func write(to path: String, seed: UInt64 = 7) throws {
        let tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + byteSymbols + ["Ġt"]
        let vocab = tokens.count, d = 32, ffn = 64, heads = 4, kv = 2, hd = 8
        let writer = GGUFWriter()
        try writer.setMetadata("general.architecture", .string("llama"))
        for (k, v) in [("block_count", 2), ("context_length", 512), ("embedding_length", d), ("feed_forward_length", ffn),
                       ("attention.head_count", heads), ("attention.head_count_kv", kv)] {
            try writer.setMetadata("llama.\(k)", .uint32(UInt32(v)))
        }
        try writer.setMetadata("llama.rope.freq_base", .float32(10_000))
        try writer.setMetadata("llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        try writer.setMetadata("tokenizer.ggml.model", .string("gpt2"))
        try writer.setMetadata("tokenizer.ggml.pre", .string("smollm"))
        try writer.setMetadata("tokenizer.ggml.tokens", .array(tokens.map { .string($0) }))
        try writer.setMetadata("tokenizer.ggml.merges", .array([.string("Ġ t")]))
        try writer.setMetadata("tokenizer.ggml.token_type", .array(tokens.indices.map { .int32($0 < 3 ? 3 : 1) }))
        try writer.setMetadata("tokenizer.ggml.bos_token_id", .uint32(1))
        try writer.setMetadata("tokenizer.ggml.eos_token_id", .uint32(2))
        try writer.setMetadata("tokenizer.ggml.padding_token_id", .uint32(2))
        try writer.setMetadata("tokenizer.chat_template", .string("{% for m in messages %}<|im_start|>... named SmolLM ...{% endfor %}"))
        var rng = SeededGenerator(seed: seed)
        func random(_ shape: Shape, _ bound: Float) -> Tensor {
            let t = Tensor(uninitialized: shape)
            for i in 0..<t.count { t[flat: i] = Float(rng.nextUnit() * 2 - 1) * bound }
            return t
        }
        func ones(_ n: Int) -> Tensor { Tensor(shape: [n], repeating: 1) }
        try writer.addTensor("token_embd.weight", random([vocab, d], 1))
        for l in 0..<2 {
            let b = "blk.\(l)"
            try writer.addTensor("\(b).attn_norm.weight", ones(d))
            try writer.addTensor("\(b).attn_q.weight", random([heads * hd, d], 0.35))
            try writer.addTensor("\(b).attn_k.weight", random([kv * hd, d], 0.35))
            try writer.addTensor("\(b).attn_v.weight", random([kv * hd, d], 0.35))
            try writer.addTensor("\(b).attn_output.weight", random([d, heads * hd], 0.35))
            try writer.addTensor("\(b).ffn_norm.weight", ones(d))
            try writer.addTensor("\(b).ffn_gate.weight", random([ffn, d], 0.35))
            try writer.addTensor("\(b).ffn_up.weight", random([ffn, d], 0.35))
            try writer.addTensor("\(b).ffn_down.weight", random([d, ffn], 0.25))
        }
        try writer.addTensor("output_norm.weight", ones(d))
        try writer.write(to: path)
    }

    /// A fresh scratch directory, removed by the caller.
    public static func scratch(_ prefix: String = "tc-test") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// Deterministic random tensors for test fixtures.
public struct FixtureRNG {
    var state: UInt64
    public init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    public mutating func next() -> Float {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(state >> 40) / Float(1 << 24) * 2 - 1
    }
    public mutating func tensor(_ shape: Shape, scale: Float) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t[flat: i] = next() * scale }
        return t
    }
}

/// A randomly initialised two-layer model in memory, small enough for debug tests.
public func makeTinyModel(_ architecture: ModelArchitecture = .llama, seed: UInt64 = 3, tied: Bool = true) throws -> TransformerModel {
    let config = TransformerConfig(
        architecture: architecture, vocabSize: 40, hiddenSize: 24, intermediateSize: 48, layerCount: 2,
        headCount: 4, kvHeadCount: 2, headDim: architecture == .qwen3 ? 8 : nil, rmsNormEps: 1e-5,
        ropeBase: 10_000, contextLength: 128, tiedEmbeddings: tied)
    return try TransformerModel.randomlyInitialised(config, seed: seed)
}

/// Products of the same build the tests come from.
public enum BuiltProducts {
    /// The `thoughtcrime` executable beside the test runner in the build products directory,
    /// or nil when it was not built.
    public static func thoughtcrime() -> URL? {
        var dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("thoughtcrime")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }
}
