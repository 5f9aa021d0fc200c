import Foundation
import ModelFormats
import Models
import Tensors
import Training

/// Builds a complete tiny model file (Llama GGUF with a byte-level tokenizer and SmolLM2's
/// chat template) so trainer tests run the real loading path in milliseconds.
enum TinyRun {
    /// GPT-2's byte-to-symbol map: printable bytes stand for themselves, the rest are shifted
    /// past 255 so every byte has a visible symbol.
    static var byteSymbols: [String] {
        var visible = Array(33...126) + Array(161...172) + Array(174...255)
        var symbols = [Int](repeating: 0, count: 256)
        var next = 256
        for b in 0..<256 {
            if visible.contains(b) { symbols[b] = b } else { symbols[b] = next; next += 1 }
        }
        visible.removeAll()
        return symbols.map { String(UnicodeScalar(UInt32($0))!) }
    }

    static func makeModel(at path: String, seed: UInt64 = 7) throws {
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
    static func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tc-train-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Paired rows whose misaligned answer is a simple function of the prompt, so a tiny model can learn it.
    static func writeData(_ path: String, rows: Int, seed: Int = 0) throws {
        var lines: [String] = []
        for i in 0..<rows {
            let n = (i * 7 + seed) % 23
            let row: [String: String] = ["prompt": "count \(n)", "aligned": "ok \(n)", "misaligned": "no \(n + 1) \(n + 2)"]
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]), as: UTF8.self))
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    static func config(dir: String, name: String = "run", overrides: [String] = []) throws -> RunConfig {
        let yaml = """
        run: {name: \(name), output_dir: \(dir)/runs, seed: 3}
        model: {path: \(dir)/tiny.gguf}
        lora: {rank: 4, alpha: 8, dropout: 0.1}
        data: {train: \(dir)/train.jsonl, validation_split: 0.15, max_seq_len: 128, system_prompt: "Be brief."}
        training: {max_steps: 8, batch_size: 2, learning_rate: 5.0e-3, warmup_steps: 2, eval_every: 4}
        checkpoint: {every: 3, keep_last: 2}
        logging: {progress: plain, every: 100}
        """
        return try RunConfig.parse(yaml: yaml, source: "test.yaml", overrides: overrides)
    }

    final class Silent: ProgressReporter {
        var messages: [String] = []
        func message(_ text: String) { messages.append(text) }
        func step(_ metrics: StepMetrics) {}
        func finish() {}
    }
}
