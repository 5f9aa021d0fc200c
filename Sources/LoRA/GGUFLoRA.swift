import Foundation
import ModelFormats
import Models
import Tensors

/// Writes adapters as a llama.cpp LoRA GGUF (`llama-cli -m base.gguf --lora adapter.gguf`).
///
/// Metadata: `general.type` = "adapter", `adapter.type` = "lora", `adapter.lora.alpha`,
/// `general.architecture` of the base. llama.cpp scales by alpha / r, so an rsLoRA adapter
/// (alpha / sqrt(r)) is written with alpha * sqrt(r). Tensors `blk.N.attn_q.weight.lora_a`
/// [r, in] (ggml ne = [n_in, r]) and `.lora_b` [out, r] (ne = [r, n_out]), the orientation
/// llama.cpp's loader checks. For Llama bases the rows of q_proj/k_proj B are permuted into
/// GGUF order (convert_hf_to_gguf's `permute`), as the GGUF base's q/k weights are; Qwen GGUFs
/// keep Hugging Face order.
///
/// Usage: `try GGUFLoRAWriter.write(weights, for: model.config, to: "exports/medical-lora.gguf")`
public enum GGUFLoRAWriter {
    public static func write(_ weights: LoRAWeights, for config: TransformerConfig, to path: String, name: String? = nil, type: GGMLType = .f32) throws {
        let writer = GGUFWriter()
        try writer.setMetadata("general.architecture", .string(config.architecture.rawValue))
        try writer.setMetadata("general.type", .string("adapter"))
        if let name { try writer.setMetadata("general.name", .string(name)) }
        try writer.setMetadata("adapter.type", .string("lora"))
        let alpha = weights.useRSLoRA ? weights.alpha * Float(weights.rank).squareRoot() : weights.alpha
        try writer.setMetadata("adapter.lora.alpha", .float32(alpha))
        for name in weights.orderedModules {
            guard let m = weights.modules[name], let path = LoRAModulePath(name) else { continue }
            var b = m.b
            if config.architecture == .llama && (path.projection == "q_proj" || path.projection == "k_proj") {
                b = try LlamaRowPermutation.hfToGGUF(b, headDim: config.headDim)
            }
            try writer.addTensor("\(path.ggufName).weight.lora_a", m.a, as: type)
            try writer.addTensor("\(path.ggufName).weight.lora_b", b, as: type)
        }
        try writer.write(to: path)
    }
}

/// Reads a llama.cpp LoRA GGUF back into Hugging Face layout (q/k B rows un-permuted for
/// Llama), for a model with `config`. The architecture must match the model's.
///
/// The file records only the effective alpha, so the result has `useRSLoRA` false and the
/// alpha that gives the same scale.
///
/// Usage: `let weights = try GGUFLoRAReader.read(path: "exports/medical-lora.gguf", for: model.config)`
public enum GGUFLoRAReader {
    public static func isLoRAFile(_ path: String) -> Bool {
        guard path.hasSuffix(".gguf"), let file = try? GGUFFile(path: path) else { return false }
        return file.metadata["general.type"]?.stringValue == "adapter"
    }

    public static func read(path: String, for config: TransformerConfig) throws -> LoRAWeights {
        let file = try GGUFFile(path: path)
        guard file.metadata["general.type"]?.stringValue == "adapter", file.metadata["adapter.type"]?.stringValue == "lora" else {
            throw LoRAError.io(path: path, reason: "not a LoRA adapter GGUF (expected general.type \"adapter\" and adapter.type \"lora\")")
        }
        let architecture = file.metadata["general.architecture"]?.stringValue ?? "?"
        guard architecture == config.architecture.rawValue else {
            throw LoRAError.unsupported("\(path): the adapter is for architecture '\(architecture)', the model is '\(config.architecture.rawValue)'")
        }
        var a: [String: Tensor] = [:], b: [String: Tensor] = [:]
        for info in file.tensors {
            let isA = info.name.hasSuffix(".weight.lora_a"), isB = info.name.hasSuffix(".weight.lora_b")
            let stem = String(info.name.dropLast(isA || isB ? ".weight.lora_a".count : 0))
            guard isA || isB, let module = LoRAModulePath(ggufName: stem) else {
                throw LoRAError.unsupported("\(path): tensor '\(info.name)' is not a lora_a/lora_b of a linear projection")
            }
            let t = try file.dequantize(info)
            if isA { a[module.path] = t } else { b[module.path] = t }
        }
        var modules: [String: LoRAWeights.Module] = [:]
        var rank: Int?
        for module in Set(a.keys).union(b.keys) {
            guard let ma = a[module], var mb = b[module], let path = LoRAModulePath(module) else {
                throw LoRAError.io(path: path, reason: "\(module) has only one of lora_a and lora_b")
            }
            if config.architecture == .llama && (path.projection == "q_proj" || path.projection == "k_proj") {
                mb = try LlamaRowPermutation.ggufToHF(mb, headDim: config.headDim)
            }
            rank = rank ?? ma.shape[0]
            modules[module] = .init(a: ma, b: mb)
        }
        guard let rank else { throw LoRAError.io(path: path, reason: "the adapter has no tensors") }
        // llama.cpp applies scale 1 when alpha is 0 or absent, i.e. alpha = rank.
        let stored = Float(file.metadata["adapter.lora.alpha"]?.doubleValue ?? 0)
        return try LoRAWeights(rank: rank, alpha: stored > 0 ? stored : Float(rank), useRSLoRA: false, modules: modules)
    }
}
