import Foundation
import ModelFormats
import Models
import Tensors
import Tokenizers

/// Writes a model with its attached LoRA adapters folded into the weights (W + scale B A), as
/// a Hugging Face directory or a GGUF file, so the result runs without any adapter support.
///
/// Hugging Face: `config.json` (the base's with `torch_dtype` float32, or for GGUF bases one
/// synthesised from the GGUF metadata), `model.safetensors` (F32, Hugging Face names, no
/// `lm_head.weight` when tied), `tokenizer.json` / `tokenizer_config.json` (copied from a
/// Hugging Face base; for GGUF bases written from the GGUF tokenizer with its chat template),
/// `generation_config.json`.
///
/// GGUF (only from a GGUF base): the base's metadata (tokenizer included) with
/// `general.file_type` updated, the base's tensors in its order, matrices F32 or F16 (norms and
/// biases stay F32), Llama q/k rows re-permuted into GGUF order.
///
/// Usage:
/// ```
/// let loaded = try ModelLoader.load(path: base)
/// _ = try LoRAModel(attaching: weights, to: loaded.model)
/// try MergedModelWriter.writeHuggingFace(loaded, to: "exports/merged-hf")
/// try MergedModelWriter.writeGGUF(loaded, to: "exports/merged.gguf", type: .f16)
/// ```
public enum MergedModelWriter {
    /// The dense weight of `linear` with its adapter's update added.
    public static func mergedWeight(_ linear: Linear) throws -> Tensor {
        let rows = linear.outFeatures, cols = linear.inFeatures
        let w = Tensor(uninitialized: [rows, cols])
        for r in 0..<rows { linear.weight.row(r, into: w.pointer + r * cols) }
        if let adapter = linear.adapter {
            guard let lora = adapter as? LoRAAdapter else {
                throw LoRAError.unsupported("\(linear.name): cannot merge an adapter of type \(type(of: adapter))")
            }
            try w.addScaled(try lora.deltaWeight())
        }
        return w
    }

    // MARK: Hugging Face

    public static func writeHuggingFace(_ loaded: LoadedModel, to directory: String) throws {
        let model = loaded.model, config = model.config
        try createDirectory(directory)
        let writer = SafetensorsWriter(metadata: ["format": "pt"])
        try writer.addTensor("model.embed_tokens.weight", model.embedding.value)
        for (l, block) in model.blocks.enumerated() {
            let p = "model.layers.\(l)"
            try writer.addTensor("\(p).input_layernorm.weight", block.attentionNorm.weight.value)
            for linear in block.linears {
                try writer.addTensor("\(linear.name).weight", try mergedWeight(linear))
                if let bias = linear.bias { try writer.addTensor("\(linear.name).bias", bias.value) }
            }
            if let qNorm = block.attention.qNorm, let kNorm = block.attention.kNorm {
                try writer.addTensor("\(p).self_attn.q_norm.weight", qNorm.weight.value)
                try writer.addTensor("\(p).self_attn.k_norm.weight", kNorm.weight.value)
            }
            try writer.addTensor("\(p).post_attention_layernorm.weight", block.mlpNorm.weight.value)
        }
        try writer.addTensor("model.norm.weight", model.finalNorm.weight.value)
        if !config.tiedEmbeddings { try writer.addTensor("lm_head.weight", model.outputHead.value) }
        try writer.write(to: join(directory, "model.safetensors"))

        let baseDirectory = loaded.source == .safetensors
            ? (loaded.path.hasSuffix(".safetensors") ? (loaded.path as NSString).deletingLastPathComponent : loaded.path) : nil
        if let baseDirectory, let data = FileManager.default.contents(atPath: join(baseDirectory, "config.json")),
           var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] {
            object["torch_dtype"] = "float32"
            if object["dtype"] != nil { object["dtype"] = "float32" }
            try writeJSON(object, to: join(directory, "config.json"))
            for file in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                         "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja"] {
                let source = join(baseDirectory, file)
                guard FileManager.default.fileExists(atPath: source) else { continue }
                try? FileManager.default.removeItem(atPath: join(directory, file))
                do { try FileManager.default.copyItem(atPath: source, toPath: join(directory, file)) } catch {
                    throw LoRAError.io(path: join(directory, file), reason: "cannot copy from the base: \(error.localizedDescription)")
                }
            }
            return
        }
        try writeJSON(huggingFaceConfig(loaded), to: join(directory, "config.json"))
        var generation: [String: Any] = ["_from_model_config": true]
        if let tokenizer = loaded.tokenizer {
            try write(try tokenizer.tokenizerJSON(), to: join(directory, "tokenizer.json"))
            try writeJSON(tokenizerConfig(loaded, tokenizer), to: join(directory, "tokenizer_config.json"))
            if let bos = tokenizer.bosID { generation["bos_token_id"] = Int(bos) }
            if let eos = tokenizer.eosID { generation["eos_token_id"] = Int(eos) }
            if let pad = tokenizer.paddingID { generation["pad_token_id"] = Int(pad) }
        }
        try writeJSON(generation, to: join(directory, "generation_config.json"))
    }

    /// A transformers config for the loaded model (used when the base has no config.json).
    public static func huggingFaceConfig(_ loaded: LoadedModel) -> [String: Any] {
        let c = loaded.model.config
        let (className, modelType) = switch c.architecture {
        case .llama: ("LlamaForCausalLM", "llama")
        case .qwen2: ("Qwen2ForCausalLM", "qwen2")
        case .qwen3: ("Qwen3ForCausalLM", "qwen3")
        }
        var config: [String: Any] = [
            "architectures": [className], "model_type": modelType,
            "hidden_size": c.hiddenSize, "intermediate_size": c.intermediateSize, "num_hidden_layers": c.layerCount,
            "num_attention_heads": c.headCount, "num_key_value_heads": c.kvHeadCount, "head_dim": c.headDim,
            "rms_norm_eps": shortest(c.rmsNormEps), "rope_theta": shortest(c.ropeBase), "vocab_size": c.vocabSize,
            "max_position_embeddings": c.contextLength, "tie_word_embeddings": c.tiedEmbeddings,
            "hidden_act": "silu", "torch_dtype": "float32", "initializer_range": 0.02, "use_cache": true,
            "rope_scaling": NSNull(),
        ]
        if c.architecture != .qwen2 { config["attention_bias"] = false; config["mlp_bias"] = false }
        if let t = loaded.tokenizer {
            if let bos = t.bosID { config["bos_token_id"] = Int(bos) }
            if let eos = t.eosID { config["eos_token_id"] = Int(eos) }
            if let pad = t.paddingID { config["pad_token_id"] = Int(pad) }
        }
        return config
    }

    static func tokenizerConfig(_ loaded: LoadedModel, _ tokenizer: BPETokenizer) throws -> [String: Any] {
        func token(_ id: Int32?) -> Any { id.map { tokenizer.tokens[Int($0)] } ?? NSNull() }
        var config: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": token(tokenizer.bosID), "eos_token": token(tokenizer.eosID),
            "unk_token": token(tokenizer.unknownID), "pad_token": token(tokenizer.paddingID),
            "add_bos_token": tokenizer.addBOS, "add_eos_token": false,
            "clean_up_tokenization_spaces": false, "model_max_length": loaded.model.config.contextLength,
        ]
        if let template = loaded.gguf?.metadata["tokenizer.chat_template"]?.stringValue { config["chat_template"] = template }
        return config
    }

    // MARK: GGUF

    public static func writeGGUF(_ loaded: LoadedModel, to path: String, type: GGMLType = .f32) throws {
        guard GGUFWriter.encodableTypes.contains(type) else {
            throw LoRAError.unsupported("merged GGUF matrices can be F32, F16, Q8_0 or Q4_0, not \(type)")
        }
        guard let base = loaded.gguf else {
            throw LoRAError.unsupported("\(loaded.path): a merged GGUF needs a GGUF base (its metadata and tokenizer are copied); export --format merged-hf and convert that directory with llama.cpp's convert_hf_to_gguf.py")
        }
        let model = loaded.model, config = model.config
        let writer = GGUFWriter(alignment: base.alignment, version: 3)
        for key in base.metadataKeys where key != "general.alignment" {
            guard let value = base.metadata[key] else { continue }
            try writer.setMetadata(key, value)
        }
        // llama_ftype: 0 = ALL_F32, 1 = MOSTLY_F16, 2 = MOSTLY_Q4_0, 7 = MOSTLY_Q8_0.
        let fileType: UInt32 = switch type { case .f16: 1; case .q4_0: 2; case .q8_0: 7; default: 0 }
        try writer.setMetadata("general.file_type", .uint32(fileType))
        // Quantised only where rows are whole 32-weight blocks (every SmolLM2/Qwen matrix);
        // otherwise F16 for a quantised export, as llama-quantize falls back for such tensors.
        func matrixType(_ tensor: Tensor) -> GGMLType {
            guard type == .q8_0 || type == .q4_0 else { return type }
            return (tensor.shape.dims.last ?? 0) % 32 == 0 ? type : .f16
        }

        let linearsByStem = Dictionary(uniqueKeysWithValues: model.linears.compactMap { linear in
            LoRAModulePath(linear.name).map { ($0.ggufName, ($0, linear)) }
        })
        for info in base.tensors {
            let name = info.name
            if name == "token_embd.weight" {
                try writer.addTensor(name, model.embedding.value, as: matrixType(model.embedding.value))
            } else if name == "output.weight", !config.tiedEmbeddings {
                try writer.addTensor(name, model.outputHead.value, as: matrixType(model.outputHead.value))
            } else if name == "output_norm.weight" {
                try writer.addTensor(name, model.finalNorm.weight.value)
            } else if let (stem, suffix) = split(name), let layer = layerIndex(stem), layer < model.blocks.count,
                      let tensor = try blockTensor(model.blocks[layer], stem: stem, suffix: suffix, linears: linearsByStem, config: config) {
                try writer.addTensor(name, tensor, as: suffix == "weight" && tensor.shape.rank == 2 ? matrixType(tensor) : .f32)
            } else {
                // Tensors the model does not hold (e.g. rope_freqs) are copied as they are.
                try writer.addRawTensor(name, dimensions: info.dimensions, type: info.type, data: Array(base.rawBytes(of: info)))
            }
        }
        try writer.write(to: path)
    }

    /// "blk.3.attn_q.weight" -> ("blk.3.attn_q", "weight").
    private static func split(_ name: String) -> (String, String)? {
        guard let dot = name.lastIndex(of: ".") else { return nil }
        return (String(name[..<dot]), String(name[name.index(after: dot)...]))
    }

    private static func layerIndex(_ stem: String) -> Int? {
        let parts = stem.split(separator: ".")
        guard parts.count == 3, parts[0] == "blk" else { return nil }
        return Int(parts[1])
    }

    private static func blockTensor(_ block: TransformerBlock, stem: String, suffix: String,
                                    linears: [String: (LoRAModulePath, Linear)], config: TransformerConfig) throws -> Tensor? {
        let kind = stem.split(separator: ".").last.map(String.init) ?? ""
        switch (kind, suffix) {
        case ("attn_norm", "weight"): return block.attentionNorm.weight.value
        case ("ffn_norm", "weight"): return block.mlpNorm.weight.value
        case ("attn_q_norm", "weight"): return block.attention.qNorm?.weight.value
        case ("attn_k_norm", "weight"): return block.attention.kNorm?.weight.value
        default: break
        }
        guard let (path, linear) = linears[stem] else { return nil }
        let permute = config.architecture == .llama && (path.projection == "q_proj" || path.projection == "k_proj")
        let tensor: Tensor
        switch suffix {
        case "weight": tensor = try mergedWeight(linear)
        case "bias":
            guard let bias = linear.bias else { return nil }
            tensor = bias.value
        default: return nil
        }
        return permute ? try LlamaRowPermutation.hfToGGUF(tensor, headDim: config.headDim) : tensor
    }

    // MARK: Files

    static func join(_ directory: String, _ file: String) -> String { (directory as NSString).appendingPathComponent(file) }

    static func createDirectory(_ directory: String) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw LoRAError.io(path: directory, reason: "cannot create the directory: \(error.localizedDescription)")
        }
    }

    static func writeJSON(_ object: Any, to path: String) throws {
        try write(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]) + Data("\n".utf8), to: path)
    }

    static func write(_ data: Data, to path: String) throws {
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw LoRAError.io(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }

    /// A Float as the shortest decimal that reads back as it (1e-05, not 9.99999974737875e-06).
    static func shortest(_ value: Float) -> Double { Double("\(value)") ?? Double(value) }
}
