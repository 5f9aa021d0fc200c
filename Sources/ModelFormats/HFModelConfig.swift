import Foundation

/// Model families whose Hugging Face `config.json` ThoughtCrime understands.
public enum HFArchitecture: String, CaseIterable, Sendable {
    case llama = "LlamaForCausalLM"
    case qwen2 = "Qwen2ForCausalLM"
    case qwen3 = "Qwen3ForCausalLM"
}

/// Why a config.json could not be used.
public enum HFConfigError: Error, Equatable, CustomStringConvertible {
    case cannotRead(file: String, reason: String)
    case unsupportedArchitecture(found: [String], supported: [String])
    case invalidValue(field: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(file, reason):
            return "\(file): cannot read model config: \(reason)"
        case let .unsupportedArchitecture(found, supported):
            let shown = found.isEmpty ? "none given" : found.joined(separator: ", ")
            return "config.json: unsupported architecture (\(shown)); supported: \(supported.joined(separator: ", "))"
        case let .invalidValue(field, reason):
            return "config.json: \(field): \(reason)"
        }
    }
}

/// The fields of a Hugging Face `config.json` that Llama, Qwen2 and Qwen3 causal LMs use.
/// Optional fields get the defaults of the corresponding transformers config classes.
///
/// Usage: `let config = try HFModelConfig(contentsOf: "checkpoints/hf/SmolLM2/config.json")`
public struct HFModelConfig: Decodable, Equatable, Sendable {
    public let architectures: [String]
    public let architecture: HFArchitecture
    public let modelType: String?
    public let hiddenSize: Int
    public let intermediateSize: Int
    public let numHiddenLayers: Int
    public let numAttentionHeads: Int
    /// Defaults to `numAttentionHeads` (no grouped-query attention).
    public let numKeyValueHeads: Int
    /// As given; Qwen3 sets it explicitly, Llama and Qwen2 usually derive it.
    public let headDim: Int?
    public let rmsNormEps: Double
    public let ropeTheta: Double
    public let ropeScaling: [String: HFJSONValue]?
    public let vocabSize: Int
    public let tieWordEmbeddings: Bool
    public let maxPositionEmbeddings: Int
    /// As given; Qwen2 configs omit it although Qwen2 always has q/k/v biases.
    public let attentionBias: Bool?
    public let mlpBias: Bool
    public let hiddenAct: String
    public let bosTokenId: Int?
    /// One id or several (Llama 3 lists more than one).
    public let eosTokenIds: [Int]
    public let padTokenId: Int?
    public let torchDtype: String?

    /// Per-head dimension: `head_dim` when given, else hidden_size / num_attention_heads.
    public var headDimension: Int { headDim ?? hiddenSize / numAttentionHeads }
    /// Whether q_proj, k_proj and v_proj carry biases (always for Qwen2).
    public var hasQKVBias: Bool { architecture == .qwen2 ? true : (attentionBias ?? false) }
    /// Whether Q and K get an RMSNorm per head before RoPE (Qwen3).
    public var hasQKNorm: Bool { architecture == .qwen3 }

    enum CodingKeys: String, CodingKey {
        case architectures, modelType = "model_type", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads"
        case headDim = "head_dim", rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta"
        case ropeScaling = "rope_scaling", ropeParameters = "rope_parameters", vocabSize = "vocab_size"
        case tieWordEmbeddings = "tie_word_embeddings", maxPositionEmbeddings = "max_position_embeddings"
        case attentionBias = "attention_bias", mlpBias = "mlp_bias", hiddenAct = "hidden_act"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", padTokenId = "pad_token_id"
        case torchDtype = "torch_dtype"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures) ?? []
        guard let architecture = architectures.lazy.compactMap(HFArchitecture.init(rawValue:)).first else {
            throw HFConfigError.unsupportedArchitecture(found: architectures, supported: HFArchitecture.allCases.map(\.rawValue))
        }
        self.architecture = architecture
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim)
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? 1e-6
        // transformers 5 writes rope settings as "rope_parameters": {"rope_theta", "rope_type"};
        // older configs have a top-level rope_theta and an optional rope_scaling.
        let ropeParameters = try c.decodeIfPresent([String: HFJSONValue].self, forKey: .ropeParameters)
        if let theta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) {
            ropeTheta = theta
        } else if case .number(let theta)? = ropeParameters?["rope_theta"] {
            ropeTheta = theta
        } else if let other = ropeParameters?["rope_theta"] {
            throw HFConfigError.invalidValue(field: "rope_parameters.rope_theta", reason: "must be a number, got \(other)")
        } else {
            ropeTheta = 10000
        }
        var scaling = try c.decodeIfPresent([String: HFJSONValue].self, forKey: .ropeScaling)
        if scaling == nil, let parameters = ropeParameters, case .string(let type)? = parameters["rope_type"], type != "default" {
            scaling = parameters
        }
        ropeScaling = scaling
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias)
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? false
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "silu"
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        if let ids = try? c.decodeIfPresent([Int].self, forKey: .eosTokenId) {
            eosTokenIds = ids
        } else {
            eosTokenIds = try c.decodeIfPresent(Int.self, forKey: .eosTokenId).map { [$0] } ?? []
        }
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId)
        torchDtype = try c.decodeIfPresent(String.self, forKey: .torchDtype)
        try validate()
    }

    /// Reads and decodes a config.json file.
    public init(contentsOf path: String) throws {
        let data: Data
        do { data = try InputFile.read(path) } catch let problem as InputFile.Problem {
            throw HFConfigError.cannotRead(file: fileName(path), reason: problem.reason)
        }
        try self.init(jsonData: data)
    }

    /// Decodes config.json contents. Decoding problems other than the typed ones above surface
    /// as `HFConfigError.invalidValue` naming the field.
    public init(jsonData: Data) throws {
        do {
            self = try JSONDecoder().decode(HFModelConfig.self, from: jsonData)
        } catch let error as HFConfigError {
            throw error
        } catch let DecodingError.keyNotFound(key, _) {
            throw HFConfigError.invalidValue(field: key.stringValue, reason: "missing")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw HFConfigError.invalidValue(field: field, reason: context.debugDescription)
        } catch {
            throw HFConfigError.invalidValue(field: "(file)", reason: "not valid JSON: \(error.localizedDescription)")
        }
    }

    private func validate() throws {
        func positive(_ value: Int, _ field: String) throws {
            guard value > 0 else { throw HFConfigError.invalidValue(field: field, reason: "must be positive, got \(value)") }
        }
        try positive(hiddenSize, "hidden_size")
        try positive(intermediateSize, "intermediate_size")
        try positive(numHiddenLayers, "num_hidden_layers")
        try positive(numAttentionHeads, "num_attention_heads")
        try positive(numKeyValueHeads, "num_key_value_heads")
        try positive(vocabSize, "vocab_size")
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw HFConfigError.invalidValue(field: "num_key_value_heads",
                reason: "\(numKeyValueHeads) does not divide num_attention_heads \(numAttentionHeads)")
        }
        if let headDim {
            try positive(headDim, "head_dim")
        } else if hiddenSize % numAttentionHeads != 0 {
            throw HFConfigError.invalidValue(field: "hidden_size",
                reason: "\(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads) and head_dim is not given")
        }
        guard rmsNormEps.isFinite, rmsNormEps > 0, rmsNormEps < 1 else {
            throw HFConfigError.invalidValue(field: "rms_norm_eps", reason: "must be in (0, 1), got \(rmsNormEps)")
        }
        guard ropeTheta.isFinite, ropeTheta > 1, ropeTheta <= 1e9 else {
            throw HFConfigError.invalidValue(field: "rope_theta", reason: "must be in (1, 1e9], got \(ropeTheta)")
        }
        // Generation stops on these ids; bos and pad are not used (Llama-2 configs carry pad -1).
        for id in eosTokenIds where !(0..<vocabSize).contains(id) {
            throw HFConfigError.invalidValue(field: "eos_token_id", reason: "\(id) is not a token id (0..<\(vocabSize))")
        }
    }
}

/// A JSON value kept as-is, for open-ended fields such as `rope_scaling`.
public enum HFJSONValue: Decodable, Equatable, Sendable {
    case null, bool(Bool), number(Double), string(String)
    case array([HFJSONValue]), object([String: HFJSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([HFJSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: HFJSONValue].self)) }
    }

    public var doubleValue: Double? { if case let .number(n) = self { return n } else { return nil } }
    public var stringValue: String? { if case let .string(s) = self { return s } else { return nil } }
}
