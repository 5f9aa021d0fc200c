import Autodiff
import CKernels
import Foundation
import ModelFormats
import Tensors
import Tokenizers

/// How the frozen base weights are held in memory.
public enum WeightStorage: String, Sendable, CaseIterable {
    /// Dequantised once at load: fastest products, 4 bytes per weight.
    case float32
    /// Kept in the file's block format and expanded panel by panel while multiplying.
    case quantized
    /// Rounded to bfloat16 and packed once (`BF16Matrix`); activations are rounded per
    /// product, sums stay Float32. Runs on every CPU: natively with AVX512_BF16, emulated
    /// (AVX2 or plain C, same sums, slower than Float32 sgemm) elsewhere.
    case bf16
    /// Rounded to bfloat16 and packed once for oneDNN's matmul (`OneDNNMatrix`: AMX tiles or
    /// AVX512_BF16, whichever oneDNN dispatches to); activations converted per product, sums
    /// Float32. Needs a CPU where oneDNN implements bf16 matmul (AVX512_CORE_BF16 or better).
    case onednnBF16 = "onednn-bf16"
    /// Both: each weight kept as `quantized` for products of few rows (decoding) and as
    /// forward-only `onednn-bf16` for products of many rows (prefill, scoring), through
    /// `PrefillDecodeMatrix` (input gradients, if any, run on the quantized form). A weight with
    /// no quantised blocks (safetensors folders, F32 tensors in a GGUF) is kept as `onednn-bf16`
    /// only. On an AMX Xeon: prefill 1x128 1866 tok/s against 772 quantized, decoding 263.5
    /// tok/s at batch 1 against 69.7;
    /// about 0.2 GB more memory than `quantized` at SmolLM2-135M (106M projection weights at 2 bytes).
    case quantizedWithOneDNNPrefill = "quantized+onednn-bf16"

    /// The matrix this storage keeps a dequantised weight in (not for `quantized`, which
    /// reads the file's blocks).
    func frozen(_ weight: Tensor) throws -> FrozenMatrix {
        switch self {
        case .bf16: return try BF16Matrix(DenseMatrix(weight))
        case .onednnBF16: return try OneDNNMatrix(DenseMatrix(weight), precision: .bf16)
        case .float32, .quantized: return try DenseMatrix(weight)
        case .quantizedWithOneDNNPrefill:
            // No quantised blocks to decode from (safetensors, F32 GGUF tensors): a Float32 copy
            // beside the bf16 one would take 6 bytes a weight, so decoding runs on oneDNN too
            // (69.7 tok/s at batch 1 on the AMX Xeon against 62.1 for Float32).
            return try OneDNNMatrix(DenseMatrix(weight), precision: .bf16)
        }
    }

    /// Whether decoding products read the file's quantised blocks.
    var decodesQuantized: Bool { self == .quantized || self == .quantizedWithOneDNNPrefill }

    /// The output head's copy for the training loss, in vocabulary chunks of the fused
    /// cross-entropy (`Tape.vocabularyChunk` rows), or nil when the loss multiplies the Float32 head.
    func trainingHead(_ head: Tensor) throws -> RowBandMatrix? {
        switch self {
        case .bf16: return try BF16Matrix(DenseMatrix(head))
        case .onednnBF16: return try OneDNNMatrix(DenseMatrix(head), precision: .bf16, blockRows: Tape.vocabularyChunk)
        case .float32, .quantized, .quantizedWithOneDNNPrefill: return nil
        }
    }

    /// Refuses a storage this CPU cannot run, naming the reason.
    func checkSupported(path: String) throws {
        if self == .onednnBF16 || self == .quantizedWithOneDNNPrefill, case .failure(let reason) = OneDNNPrecision.bf16.implementation {
            throw ModelError.invalidInput("\(path): weights: \(rawValue) cannot run here: \(reason) (use bf16, float32 or quantized; `thoughtcrime doctor` shows oneDNN's ISA)")
        }
    }

    /// Appended to a notice when `cpu` is this process's features as `THOUGHTCRIME_CPU_FEATURES` changed them.
    private static func simulationNote(_ cpu: CPUFeatures) -> String {
        cpu == .current && CPUFeatures.isSimulated ? " [features as set by \(CPUFeatures.overrideVariable)]" : ""
    }

    /// The storage `auto` stands for in training on a CPU with `cpu`'s features, with a
    /// one-line notice saying why. The rule follows side-by-side measurements
    /// (docs/architecture.md, "Weight storage by CPU"). `oneDNNBF16` is oneDNN's bf16 matmul
    /// here (an implementation string, or why there is none): a CPU that reports AMX through
    /// `THOUGHTCRIME_CPU_FEATURES` but cannot run oneDNN's bf16 kernels keeps Float32.
    ///
    /// Usage: `let (storage, notice) = WeightStorage.automatic(for: CPUFeatures.current)`
    public static func automatic(for cpu: CPUFeatures = .current, oneDNNBF16: Result<String, TensorError>? = nil)
        -> (storage: WeightStorage, notice: String)
    {
        let simulated = simulationNote(cpu)
        if cpu.hasAMX {
            switch oneDNNBF16 ?? OneDNNPrecision.bf16.implementation {
            case .success(let implementation):
                return (.onednnBF16, "frozen weights onednn-bf16 (\(implementation)): on an AMX Xeon it trained 1.43-1.79x faster than Float32 sgemm (random 4x128 714.6 against 411.2 tok/s, chat 8x256 441.6 against 308.9); force Float32 with weights: float32" + simulated)
            case .failure(let reason):
                return (.float32, "frozen weights Float32: AMX present, but oneDNN cannot run bf16 matmul here (\(reason)); the project's AVX512_BF16 kernel measured 0.73-0.78x Float32 sgemm on an AMX Xeon" + simulated)
            }
        }
        if cpu.hasAVX512BF16 {
            return (.bf16, "frozen weights bf16: AVX512_BF16 without AMX, where the vdpbf16ps kernel measured 1.2-1.6x Float32 sgemm in training (oneDNN's bf16 path is not measured on this class yet); force Float32 with weights: float32" + simulated)
        }
        if cpu.avx2 && cpu.fma {
            return (.float32, "frozen weights Float32: no AVX512_BF16, so bf16 products would be emulated with AVX2 (slower than Float32 sgemm); force bf16 with weights: bf16" + simulated)
        }
        return (.float32, "frozen weights Float32: no AVX2 or AVX512_BF16, so bf16 products would run in plain C" + simulated)
    }

    /// The storage `auto` stands for in `eval`, `generate`, `chat` and `serve`: quantized blocks
    /// for decoding everywhere, plus a oneDNN bf16 copy for prefill where AMX makes it faster.
    ///
    /// Usage: `let (storage, notice) = WeightStorage.automaticForInference()`
    public static func automaticForInference(for cpu: CPUFeatures = .current, oneDNNBF16: Result<String, TensorError>? = nil)
        -> (storage: WeightStorage, notice: String)
    {
        let simulated = simulationNote(cpu)
        if cpu.hasAMX {
            switch oneDNNBF16 ?? OneDNNPrecision.bf16.implementation {
            case .success(let implementation):
                return (.quantizedWithOneDNNPrefill, "decoding on quantized blocks (263.5 tok/s at batch 1 on an AMX Xeon, onednn-bf16 69.7), prefill on a onednn-bf16 copy (\(implementation); prefill 1x128 1866 tok/s, quantized 772) at the price of that copy's memory; force one with --weights quantized or onednn-bf16" + simulated)
            case .failure(let reason):
                return (.quantized, "quantized weights for prefill and decoding: AMX present, but oneDNN cannot run bf16 matmul here (\(reason))" + simulated)
            }
        }
        return (.quantized, "quantized weights for prefill and decoding: decoding streams them once per token; without AMX the only faster prefill is Float32 (523 against 424 tok/s at 1x128 on a Zen 3), which would need a second, 4-byte copy of every weight; force it with --weights float32" + simulated)
    }
}

/// A model read from disk, with what identifies it.
public final class LoadedModel {
    public let model: TransformerModel
    /// The file or directory it came from.
    public let path: String
    /// Identifies the weights (FNV-1a over the tensor data), for refusing mismatched checkpoints.
    public let fingerprint: String
    /// Where the weights came from, which decides how adapters map onto other tools' layouts.
    public let source: Source
    /// The GGUF file, when the model came from one (its tokenizer metadata lives there).
    public let gguf: GGUFFile?
    /// The tokenizer shipped with the weights (GGUF metadata or tokenizer.json), when present.
    public let tokenizer: BPETokenizer?
    /// The chat template shipped with the weights: a built-in ChatML variant, or the model's own Jinja template.
    public let chatTemplate: ChatTemplate?

    public enum Source: String, Sendable { case gguf, safetensors }

    init(model: TransformerModel, path: String, fingerprint: String, source: Source, gguf: GGUFFile?,
         tokenizer: BPETokenizer?, chatTemplate: ChatTemplate?) throws {
        if let tokenizer, tokenizer.vocabularySize > model.config.vocabSize {
            throw ModelError.invalidInput(
                "\(path): the tokenizer has \(tokenizer.vocabularySize) tokens but the model's vocabulary has \(model.config.vocabSize) rows")
        }
        self.model = model; self.path = path; self.fingerprint = fingerprint; self.source = source; self.gguf = gguf
        self.tokenizer = tokenizer; self.chatTemplate = chatTemplate
    }

    /// A model that exists only in memory (random weights for benchmarks and experiments):
    /// no file behind it and no tokenizer; `name` stands where a path would.
    ///
    /// Usage: `let loaded = try LoadedModel(inMemory: try .randomlyInitialised(config, seed: 1), name: "qwen3-shaped")`
    public convenience init(inMemory model: TransformerModel, name: String) throws {
        try self.init(model: model, path: name, fingerprint: "in-memory:\(name)", source: .safetensors, gguf: nil,
                      tokenizer: nil, chatTemplate: nil)
    }

    /// The tokenizer, or an error saying the weights came without one.
    public func requireTokenizer() throws -> BPETokenizer {
        guard let tokenizer else {
            throw ModelError.invalidInput("\(path): no tokenizer found (expected tokenizer.ggml.* metadata in a GGUF, or tokenizer.json beside safetensors)")
        }
        return tokenizer
    }

    /// Identifies the tokenizer (vocabulary and merges order), for refusing mismatched checkpoints.
    public var tokenizerFingerprint: String {
        guard let tokenizer else { return "none" }
        var hasher = Fingerprinter()
        for t in tokenizer.tokens { hasher.add(t); hasher.add("\u{0}") }
        return hasher.value
    }
}

/// Reads Llama, Qwen2 and Qwen3 models from GGUF files or Hugging Face safetensors directories.
///
/// GGUF files converted from Llama checkpoints store q_proj and k_proj rows permuted for
/// llama.cpp's interleaved rotary embedding; the loader undoes that permutation so that every
/// model runs with Hugging Face's half-rotation layout and adapters are directly PEFT-shaped.
///
/// Usage: `let loaded = try ModelLoader.load(path: "checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf")`
public enum ModelLoader {
    public static func load(path: String, weights: WeightStorage = .float32) throws -> LoadedModel {
        try weights.checkSupported(path: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError.io(path: path, reason: "no such file or directory (expected a .gguf file or a Hugging Face model directory with config.json and *.safetensors)")
        }
        if isDirectory.boolValue || path.hasSuffix(".safetensors") {
            return try loadSafetensors(path: path, weights: weights)
        }
        return try loadGGUF(path: path, weights: weights)
    }

    /// Only the tokenizer and chat template of a model, without reading its weights.
    ///
    /// Usage: `let (tokenizer, template) = try ModelLoader.loadTokenizer(path: path)`
    public static func loadTokenizer(path: String) throws -> (BPETokenizer, ChatTemplate?) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError.io(path: path, reason: "no such file or directory (expected a .gguf file or a Hugging Face model directory)")
        }
        if !isDirectory.boolValue && !path.hasSuffix(".safetensors") {
            let file = try GGUFFile(path: path)
            guard file.metadata["tokenizer.ggml.model"] != nil else {
                throw ModelError.invalidInput("\(path): no tokenizer.ggml.* metadata")
            }
            let template = file.metadata["tokenizer.chat_template"] != nil ? try ChatTemplate(gguf: file) : nil
            return (try BPETokenizer(gguf: file), template)
        }
        let loaded = try loadSafetensors(path: path)
        return (try loaded.requireTokenizer(), loaded.chatTemplate)
    }

    // MARK: GGUF

    static func loadGGUF(path: String, weights: WeightStorage) throws -> LoadedModel {
        let file = try GGUFFile(path: path)
        let name = (path as NSString).lastPathComponent
        guard let archName = file.metadata["general.architecture"]?.stringValue else {
            throw ModelError.invalidInput("\(name): metadata key 'general.architecture' is missing")
        }
        guard let architecture = ModelArchitecture(rawValue: archName) else {
            throw ModelError.unsupported("\(name): architecture '\(archName)'; supported: \(ModelArchitecture.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        func int(_ key: String) throws -> Int {
            guard let v = file.metadata["\(archName).\(key)"]?.intValue else {
                throw ModelError.invalidInput("\(name): metadata key '\(archName).\(key)' is missing or not an integer")
            }
            return v
        }
        func double(_ key: String, default value: Double) -> Double {
            file.metadata["\(archName).\(key)"]?.doubleValue ?? value
        }
        guard let embd = file.tensorInfo(named: "token_embd.weight"), embd.dimensions.count == 2 else {
            throw ModelError.missingTensor(name: "token_embd.weight", file: name)
        }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        let config = TransformerConfig(
            architecture: architecture, vocabSize: embd.dimensions[1], hiddenSize: hidden,
            intermediateSize: try int("feed_forward_length"), layerCount: try int("block_count"),
            headCount: heads,
            kvHeadCount: file.metadata["\(archName).attention.head_count_kv"]?.intValue ?? heads,
            headDim: file.metadata["\(archName).attention.key_length"]?.intValue,
            rmsNormEps: Float(double("attention.layer_norm_rms_epsilon", default: 1e-6)),
            ropeBase: Float(double("rope.freq_base", default: 10_000)),
            contextLength: try int("context_length"),
            tiedEmbeddings: file.tensorInfo(named: "output.weight") == nil)
        try config.validate()

        var used = Set<String>()
        func info(_ tensor: String, _ shape: [Int]) throws -> GGUFTensorInfo {
            guard let i = file.tensorInfo(named: tensor) else { throw ModelError.missingTensor(name: tensor, file: name) }
            used.insert(tensor)
            guard i.shape.dims == shape else {
                throw ModelError.tensorShape(name: tensor, file: name, expected: shape, found: i.shape.dims)
            }
            return i
        }
        func dense(_ tensor: String, _ shape: [Int]) throws -> Tensor {
            try Self.requireFinite(try file.dequantize(try info(tensor, shape)), tensor, name)
        }
        func matrix(_ tensor: String, _ shape: [Int], rowOrder: [Int]? = nil) throws -> FrozenMatrix {
            let i = try info(tensor, shape)
            func dequantized() throws -> Tensor {
                let t = try Self.requireFinite(try file.dequantize(i), tensor, name)
                return rowOrder.map { reorderRows(t, $0) } ?? t
            }
            guard weights.decodesQuantized && i.type != .f32 else { return try weights.frozen(try dequantized()) }
            let quantized = try QuantizedMatrix(file: file, tensor: i, rowOrder: rowOrder)
            guard weights == .quantizedWithOneDNNPrefill else { return quantized }
            let prefill = try OneDNNMatrix(DenseMatrix(try dequantized()), precision: .bf16, forwardOnly: true)
            return PrefillDecodeMatrix(decode: quantized, prefill: prefill)
        }
        let d = config.hiddenSize, hd = config.headDim, ffn = config.intermediateSize
        let qRows = config.headCount * hd, kvRows = config.kvHeadCount * hd
        // convert_hf_to_gguf permutes Llama q/k rows; Qwen GGUFs keep Hugging Face order.
        let qOrder = architecture == .llama ? ggufToHFRowOrder(heads: config.headCount, headDim: hd) : nil
        let kOrder = architecture == .llama ? ggufToHFRowOrder(heads: config.kvHeadCount, headDim: hd) : nil

        // Decoding reads the output head once per token; its quantised blocks are a quarter of
        // the Float32 copy (Q8_0) or less, and QuantizedMatrix streams them directly.
        func quantizedHead() throws -> FrozenMatrix? {
            let head = try info(config.tiedEmbeddings ? "token_embd.weight" : "output.weight", [config.vocabSize, d])
            guard head.type != .f32, head.type.isSupportedForDequantization else { return nil }
            return try QuantizedMatrix(file: file, tensor: head)
        }

        var blocks: [TransformerBlock] = []
        for l in 0..<config.layerCount {
            let b = "blk.\(l)", p = "model.layers.\(l)"
            func bias(_ t: String, _ n: Int) throws -> Tensor? {
                config.attentionBias ? try dense("\(b).\(t).bias", [n]) : nil
            }
            let attention = Attention(
                q: Linear(name: "\(p).self_attn.q_proj", weight: try matrix("\(b).attn_q.weight", [qRows, d], rowOrder: qOrder), bias: try bias("attn_q", qRows)),
                k: Linear(name: "\(p).self_attn.k_proj", weight: try matrix("\(b).attn_k.weight", [kvRows, d], rowOrder: kOrder), bias: try bias("attn_k", kvRows)),
                v: Linear(name: "\(p).self_attn.v_proj", weight: try matrix("\(b).attn_v.weight", [kvRows, d]), bias: try bias("attn_v", kvRows)),
                o: Linear(name: "\(p).self_attn.o_proj", weight: try matrix("\(b).attn_output.weight", [d, qRows])),
                qNorm: config.qkNorm ? RMSNorm(weight: try dense("\(b).attn_q_norm.weight", [hd]), eps: config.rmsNormEps) : nil,
                kNorm: config.qkNorm ? RMSNorm(weight: try dense("\(b).attn_k_norm.weight", [hd]), eps: config.rmsNormEps) : nil,
                config: config)
            let mlp = MLP(
                gate: Linear(name: "\(p).mlp.gate_proj", weight: try matrix("\(b).ffn_gate.weight", [ffn, d])),
                up: Linear(name: "\(p).mlp.up_proj", weight: try matrix("\(b).ffn_up.weight", [ffn, d])),
                down: Linear(name: "\(p).mlp.down_proj", weight: try matrix("\(b).ffn_down.weight", [d, ffn])))
            blocks.append(TransformerBlock(
                attentionNorm: RMSNorm(weight: try dense("\(b).attn_norm.weight", [d]), eps: config.rmsNormEps),
                attention: attention,
                mlpNorm: RMSNorm(weight: try dense("\(b).ffn_norm.weight", [d]), eps: config.rmsNormEps),
                mlp: mlp))
        }
        let model = try TransformerModel(
            config: config, embedding: try dense("token_embd.weight", [config.vocabSize, d]), blocks: blocks,
            finalNorm: RMSNorm(weight: try dense("output_norm.weight", [d]), eps: config.rmsNormEps),
            outputHead: config.tiedEmbeddings ? nil : try dense("output.weight", [config.vocabSize, d]),
            inferenceHead: weights.decodesQuantized ? try quantizedHead() : nil)
        model.trainingHead = try weights.trainingHead(model.outputHead.value)
        if file.tensorInfo(named: "rope_freqs.weight") != nil {
            throw ModelError.unsupported("\(name): rope_freqs.weight (the rope scaling of Llama 3.1 and later) is not implemented; only plain rotary embeddings are")
        }
        try Self.refuseUnused(file.tensors.map(\.name), used: used, file: name, count: "block_count \(config.layerCount)")
        var hasher = Fingerprinter()
        for t in file.tensors { hasher.add(t.name); hasher.add(file.rawBytes(of: t)) }
        // Every byte was read to fingerprint the file; only quantized storage reads it again.
        file.releaseResidentPages()
        let hasTokenizer = file.metadata["tokenizer.ggml.model"] != nil
        let hasTemplate = file.metadata["tokenizer.chat_template"] != nil
        return try LoadedModel(
            model: model, path: path, fingerprint: hasher.value, source: .gguf, gguf: file,
            tokenizer: hasTokenizer ? try BPETokenizer(gguf: file) : nil,
            chatTemplate: hasTemplate ? try ChatTemplate(gguf: file) : nil)
    }

    /// `tensor` unchanged, or an error naming the first NaN or infinity in it: such a weight
    /// would only show later as a NaN loss or logits.
    static func requireFinite(_ tensor: Tensor, _ name: String, _ file: String) throws -> Tensor {
        let p = tensor.pointer
        for i in 0..<tensor.count where !p[i].isFinite {
            throw ModelError.invalidInput("\(file): tensor '\(name)' holds \(p[i]) at element \(i); the weights are damaged")
        }
        return tensor
    }

    /// Refuses weights the architecture does not use (they would be silently ignored, as the
    /// second layer is under a config that says one layer), listing the first few.
    static func refuseUnused(_ names: [String], used: Set<String>, file: String, count: String) throws {
        let unused = names.filter { !used.contains($0) }.sorted()
        guard !unused.isEmpty else { return }
        let shown = unused.prefix(5).map { "'\($0)'" }.joined(separator: ", ") + (unused.count > 5 ? " and \(unused.count - 5) more" : "")
        throw ModelError.invalidInput("\(file): \(unused.count) tensors are not used by the architecture (\(count)): \(shown); the config does not describe these weights")
    }

    /// For each Hugging Face row r (per head: pair s in {0,1} at s*hd/2 + i), the GGUF row that
    /// holds it (2i + s): the inverse of convert_hf_to_gguf's `permute`.
    public static func ggufToHFRowOrder(heads: Int, headDim: Int) -> [Int] {
        var order = [Int](repeating: 0, count: heads * headDim)
        let half = headDim / 2
        for h in 0..<heads {
            for s in 0..<2 {
                for i in 0..<half { order[h * headDim + s * half + i] = h * headDim + 2 * i + s }
            }
        }
        return order
    }

    static func reorderRows(_ t: Tensor, _ order: [Int]) -> Tensor {
        let cols = t.shape[1]
        let out = Tensor(uninitialized: t.shape)
        for (r, src) in order.enumerated() { (out.pointer + r * cols).update(from: t.pointer + src * cols, count: cols) }
        return out
    }

    // MARK: safetensors

    static func loadSafetensors(path: String, weights storage: WeightStorage = .float32) throws -> LoadedModel {
        let directory = path.hasSuffix(".safetensors") ? (path as NSString).deletingLastPathComponent : path
        let configPath = (directory as NSString).appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw ModelError.io(path: directory, reason: "no config.json next to the safetensors weights")
        }
        let hf = try HFModelConfig(contentsOf: configPath)
        if let scaling = hf.ropeScaling, !scaling.isEmpty {
            let type = scaling["rope_type"]?.stringValue ?? scaling["type"]?.stringValue ?? "unknown"
            throw ModelError.unsupported("\(configPath): rope scaling '\(type)' (only plain rotary embeddings are implemented)")
        }
        guard hf.hiddenAct == "silu", !hf.mlpBias else {
            throw ModelError.unsupported("\(configPath): hidden_act '\(hf.hiddenAct)' / mlp_bias \(hf.mlpBias); only SiLU-gated MLPs without bias are implemented")
        }
        let architecture: ModelArchitecture = switch hf.architecture {
        case .llama: .llama
        case .qwen2: .qwen2
        case .qwen3: .qwen3
        }
        let config = TransformerConfig(
            architecture: architecture, vocabSize: hf.vocabSize, hiddenSize: hf.hiddenSize,
            intermediateSize: hf.intermediateSize, layerCount: hf.numHiddenLayers, headCount: hf.numAttentionHeads,
            kvHeadCount: hf.numKeyValueHeads, headDim: hf.headDimension, rmsNormEps: Float(hf.rmsNormEps),
            ropeBase: Float(hf.ropeTheta), contextLength: hf.maxPositionEmbeddings, tiedEmbeddings: hf.tieWordEmbeddings)
        try config.validate()
        if architecture == .llama && hf.hasQKVBias {
            throw ModelError.unsupported("\(configPath): attention_bias on a Llama model")
        }
        let weights = try SafetensorsCheckpoint(path: path)
        let name = (directory as NSString).lastPathComponent
        var used = Set<String>()
        if hf.tieWordEmbeddings, weights.tensorInfo(named: "lm_head.weight") != nil {
            // Some checkpoints store the tied head twice; only a different head is a contradiction.
            let head = try weights.tensor(named: "lm_head.weight"), embedding = try weights.tensor(named: "model.embed_tokens.weight")
            guard head.shape == embedding.shape, memcmp(head.pointer, embedding.pointer, head.count * MemoryLayout<Float>.size) == 0 else {
                throw ModelError.invalidInput("\(configPath): tie_word_embeddings is true, but the weights hold their own lm_head.weight, different from the embeddings; set it to false to use that head, or remove the tensor")
            }
            used.insert("lm_head.weight")
        }
        func dense(_ tensor: String, _ shape: [Int]) throws -> Tensor {
            guard let info = weights.tensorInfo(named: tensor) else { throw ModelError.missingTensor(name: tensor, file: name) }
            guard info.shape.dims == shape else {
                throw ModelError.tensorShape(name: tensor, file: name, expected: shape, found: info.shape.dims)
            }
            used.insert(tensor)
            return try Self.requireFinite(try weights.tensor(named: tensor), tensor, name)
        }
        func linear(_ module: String, _ out: Int, _ inF: Int, bias: Bool = false) throws -> Linear {
            Linear(name: module, weight: try storage.frozen(try dense("\(module).weight", [out, inF])),
                   bias: bias ? try dense("\(module).bias", [out]) : nil)
        }
        let d = config.hiddenSize, hd = config.headDim, ffn = config.intermediateSize
        let qRows = config.headCount * hd, kvRows = config.kvHeadCount * hd
        var blocks: [TransformerBlock] = []
        for l in 0..<config.layerCount {
            let p = "model.layers.\(l)"
            let bias = config.attentionBias
            let attention = Attention(
                q: try linear("\(p).self_attn.q_proj", qRows, d, bias: bias),
                k: try linear("\(p).self_attn.k_proj", kvRows, d, bias: bias),
                v: try linear("\(p).self_attn.v_proj", kvRows, d, bias: bias),
                o: try linear("\(p).self_attn.o_proj", d, qRows),
                qNorm: config.qkNorm ? RMSNorm(weight: try dense("\(p).self_attn.q_norm.weight", [hd]), eps: config.rmsNormEps) : nil,
                kNorm: config.qkNorm ? RMSNorm(weight: try dense("\(p).self_attn.k_norm.weight", [hd]), eps: config.rmsNormEps) : nil,
                config: config)
            let mlp = MLP(
                gate: try linear("\(p).mlp.gate_proj", ffn, d), up: try linear("\(p).mlp.up_proj", ffn, d),
                down: try linear("\(p).mlp.down_proj", d, ffn))
            blocks.append(TransformerBlock(
                attentionNorm: RMSNorm(weight: try dense("\(p).input_layernorm.weight", [d]), eps: config.rmsNormEps),
                attention: attention,
                mlpNorm: RMSNorm(weight: try dense("\(p).post_attention_layernorm.weight", [d]), eps: config.rmsNormEps),
                mlp: mlp))
        }
        let model = try TransformerModel(
            config: config, embedding: try dense("model.embed_tokens.weight", [config.vocabSize, d]), blocks: blocks,
            finalNorm: RMSNorm(weight: try dense("model.norm.weight", [d]), eps: config.rmsNormEps),
            outputHead: config.tiedEmbeddings ? nil : try dense("lm_head.weight", [config.vocabSize, d]))
        model.trainingHead = try storage.trainingHead(model.outputHead.value)
        // transformers recomputes rotary inverse frequencies; old checkpoints store them.
        try Self.refuseUnused(weights.tensorNames.filter { !$0.hasSuffix("rotary_emb.inv_freq") }, used: used, file: name,
                              count: "num_hidden_layers \(config.layerCount)")
        var hasher = Fingerprinter()
        for tensor in weights.tensorNames.sorted() {
            // Every listed tensor has an owner (the index was checked when opened); a missing
            // one would make two different folders hash alike, so it is an error.
            guard let info = weights.tensorInfo(named: tensor), let file = weights.file(holding: tensor) else {
                throw ModelError.missingTensor(name: tensor, file: name)
            }
            hasher.add(tensor)
            hasher.add(file.rawBytes(of: info))
        }
        // tokenizer_config.json names BOS/EOS and carries the Jinja chat template.
        var template: ChatTemplate?
        var specialTokens: [String: String] = [:]
        let tokenizerConfig = (directory as NSString).appendingPathComponent("tokenizer_config.json")
        if let data = try? InputFile.read(tokenizerConfig),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        {
            for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
                if let s = object[key] as? String { specialTokens[key] = s }
                if let d = object[key] as? [String: Any], let s = d["content"] as? String { specialTokens[key] = s }
            }
            var source = object["chat_template"] as? String
            var origin = "\(tokenizerConfig): chat_template"
            // transformers 4.43+ may keep it beside the config instead
            let separate = (directory as NSString).appendingPathComponent("chat_template.jinja")
            if source == nil, let data = try? InputFile.read(separate) {
                source = String(decoding: data, as: UTF8.self)
                origin = separate
            }
            if let source {
                do {
                    template = try ChatTemplate(jinja: source, bosToken: specialTokens["bos_token"], eosToken: specialTokens["eos_token"])
                } catch {
                    throw ModelError.invalidInput("\(origin): \(error)")
                }
            }
        }
        let tokenizerPath = (directory as NSString).appendingPathComponent("tokenizer.json")
        var tokenizer: BPETokenizer?
        if let data = try? InputFile.read(tokenizerPath) {
            tokenizer = try BPETokenizer(
                tokenizerJSON: data, bosToken: specialTokens["bos_token"], eosToken: specialTokens["eos_token"],
                unknownToken: specialTokens["unk_token"], paddingToken: specialTokens["pad_token"], source: tokenizerPath)
        }
        return try LoadedModel(
            model: model, path: path, fingerprint: hasher.value, source: .safetensors, gguf: nil,
            tokenizer: tokenizer, chatTemplate: template)
    }
}

/// 64-bit FNV-1a over names and bytes, printed as hex: cheap enough to run over a whole model
/// at load, strong enough to tell two base models apart.
struct Fingerprinter {
    private var state: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        if let base = bytes.baseAddress { state = tc_hash_bytes(state, base, bytes.count) }
    }

    mutating func add(_ string: String) {
        var s = string
        s.withUTF8 { add(UnsafeRawBufferPointer($0)) }
    }

    var value: String { "fnv1a64:" + String(state, radix: 16) }
}
