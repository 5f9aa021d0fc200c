import CKernels
import Foundation
import ModelFormats
import Tensors

/// GGUF files made at test time from the committed tiny Hugging Face Llama checkpoint, the way
/// llama.cpp's convert_hf_to_gguf.py makes them (q/k rows permuted for interleaved rotary; with
/// `q8_0`, every 2-D matrix quantised like gguf-py's Q8_0), so no model file is committed. The
/// permutation and quantiser here are written independently of the code under test.
public enum ConvertedGGUF {
    /// Path of the converted tiny Llama, written once per process into the temporary directory
    /// under a name fixed by the checkpoint's path, so repeated test runs reuse one file each
    /// instead of leaving new ones behind (written aside and renamed, so a reader never sees a
    /// partial file).
    public static func tinyLlama(q8_0: Bool, from hfDirectory: String) throws -> String {
        let key = "\(hfDirectory)|\(q8_0)"
        if let path = cache[key] { return path }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let directory = FileManager.default.temporaryDirectory
        let path = directory.appendingPathComponent("tc-converted-\(String(hash, radix: 16))-\(q8_0 ? "q8_0" : "f32").gguf").path
        let partial = directory.appendingPathComponent("tc-converted-\(UUID().uuidString).partial").path
        try write(hfDirectory: hfDirectory, to: partial, q8_0: q8_0)
        guard rename(partial, path) == 0 else {
            try? FileManager.default.removeItem(atPath: partial)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        cache[key] = path
        return path
    }

    nonisolated(unsafe) static var cache: [String: String] = [:]

    static func ggufName(_ hf: String) -> String {
        switch hf {
        case "model.embed_tokens.weight": return "token_embd.weight"
        case "model.norm.weight": return "output_norm.weight"
        case "lm_head.weight": return "output.weight"
        default:
            let parts = hf.split(separator: ".").map(String.init)
            let table = [
                "input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
                "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
                "self_attn.o_proj.weight": "attn_output.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
                "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
            ]
            return "blk.\(parts[2]).\(table[parts[3...].joined(separator: ".")] ?? hf)"
        }
    }

    /// convert_hf_to_gguf's permute: rows reshaped to (heads, 2, headDim/2) then the last two
    /// axes swapped, so HF row h*hd + s*hd/2 + i lands at h*hd + 2i + s.
    static func permute(_ t: Tensor, heads: Int) -> Tensor {
        let rows = t.shape[0], cols = t.shape[1], half = rows / heads / 2
        let out = Tensor(uninitialized: t.shape)
        for h in 0..<heads { for s in 0..<2 { for i in 0..<half {
            (out.pointer + (h * 2 * half + 2 * i + s) * cols).update(from: t.pointer + (h * 2 * half + s * half + i) * cols, count: cols)
        } } }
        return out
    }

    /// gguf-py's Q8_0: per 32 values d = max|x| / 127, q = round-half-away(x / d), d stored as f16.
    static func quantizeQ8_0(_ t: Tensor) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(t.count / 32 * 34)
        for block in 0..<(t.count / 32) {
            let x = (0..<32).map { t[flat: block * 32 + $0] }
            let d = (x.map(abs).max() ?? 0) / 127
            let inverse: Float = d == 0 ? 0 : 1 / d
            let half = tc_f32_to_f16(d)
            bytes += [UInt8(half & 0xff), UInt8(half >> 8)]
            bytes += x.map { UInt8(bitPattern: Int8(($0 * inverse).rounded())) }
        }
        return bytes
    }

    static func write(hfDirectory: String, to path: String, q8_0: Bool) throws {
        let config = try HFModelConfig(contentsOf: (hfDirectory as NSString).appendingPathComponent("config.json"))
        let weights = try SafetensorsCheckpoint(path: hfDirectory)
        let writer = GGUFWriter()
        try writer.setMetadata("general.architecture", .string("llama"))
        try writer.setMetadata("general.type", .string("model"))
        try writer.setMetadata("general.name", .string(q8_0 ? "tiny-llama-q8_0" : "tiny-llama"))
        for (key, value) in [("block_count", config.numHiddenLayers), ("context_length", config.maxPositionEmbeddings),
                             ("embedding_length", config.hiddenSize), ("feed_forward_length", config.intermediateSize),
                             ("attention.head_count", config.numAttentionHeads), ("attention.head_count_kv", config.numKeyValueHeads)] {
            try writer.setMetadata("llama.\(key)", .uint32(UInt32(value)))
        }
        try writer.setMetadata("llama.rope.freq_base", .float32(Float(config.ropeTheta)))
        try writer.setMetadata("llama.attention.layer_norm_rms_epsilon", .float32(Float(config.rmsNormEps)))
        try writer.setMetadata("general.file_type", .uint32(q8_0 ? 7 : 0))
        try writer.setMetadata("llama.vocab_size", .uint32(UInt32(config.vocabSize)))
        try writer.setMetadata("llama.rope.dimension_count", .uint32(UInt32(config.hiddenSize / config.numAttentionHeads)))
        if q8_0 { try writer.setMetadata("general.quantization_version", .uint32(2)) }
        for name in weights.tensorNames.sorted() {
            var t = try weights.tensor(named: name)
            if name.hasSuffix("q_proj.weight") { t = permute(t, heads: config.numAttentionHeads) }
            if name.hasSuffix("k_proj.weight") { t = permute(t, heads: config.numKeyValueHeads) }
            if q8_0 && t.shape.rank == 2 {
                try writer.addRawTensor(ggufName(name), dimensions: [t.shape[1], t.shape[0]], type: .q8_0, data: quantizeQ8_0(t))
            } else {
                try writer.addTensor(ggufName(name), t)
            }
        }
        try writer.write(to: path)
    }
}
