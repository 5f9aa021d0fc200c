import Tensors

/// The decoder-only architectures the toolkit runs.
public enum ModelArchitecture: String, Sendable, CaseIterable {
    /// Llama (SmolLM2): no biases, no q/k norm.
    case llama
    /// Qwen2 / Qwen2.5: biases on q, k and v projections.
    case qwen2
    /// Qwen3: per-head RMSNorm on q and k before the rotary embedding, no biases.
    case qwen3
}

/// Hyper-parameters of a Llama-family transformer.
///
/// Usage: `let c = TransformerConfig(architecture: .llama, vocabSize: 49152, hiddenSize: 576, ...)`
public struct TransformerConfig: Equatable, Sendable {
    public var architecture: ModelArchitecture
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var rmsNormEps: Float
    public var ropeBase: Float
    public var contextLength: Int
    public var tiedEmbeddings: Bool

    public init(
        architecture: ModelArchitecture, vocabSize: Int, hiddenSize: Int, intermediateSize: Int,
        layerCount: Int, headCount: Int, kvHeadCount: Int, headDim: Int? = nil,
        rmsNormEps: Float = 1e-5, ropeBase: Float = 10_000, contextLength: Int = 2048,
        tiedEmbeddings: Bool = false
    ) {
        self.architecture = architecture
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim ?? (headCount > 0 ? hiddenSize / headCount : 0)
        self.rmsNormEps = rmsNormEps
        self.ropeBase = ropeBase
        self.contextLength = contextLength
        self.tiedEmbeddings = tiedEmbeddings
    }

    /// q, k and v projections carry a bias (Qwen2).
    public var attentionBias: Bool { architecture == .qwen2 }
    /// q and k are RMS-normalised per head (Qwen3).
    public var qkNorm: Bool { architecture == .qwen3 }

    /// Checks the numbers describe a model this code can run.
    public func validate() throws {
        func fail(_ message: String) -> ModelError { .invalidConfig(message) }
        guard vocabSize > 0, hiddenSize > 0, intermediateSize > 0, layerCount > 0 else {
            throw fail("vocab, hidden, intermediate sizes and layer count must be positive")
        }
        guard headCount > 0, kvHeadCount > 0, headCount % kvHeadCount == 0 else {
            throw fail("head count \(headCount) must be a positive multiple of kv head count \(kvHeadCount)")
        }
        guard headDim > 0, headDim % 2 == 0, headDim <= 512 else {
            throw fail("head dim \(headDim) must be even and at most 512")
        }
        // A model trains with eps around 1e-5; an infinite or huge one zeroes every activation.
        guard rmsNormEps.isFinite, rmsNormEps > 0, rmsNormEps < 1 else {
            throw fail("RMS norm epsilon \(rmsNormEps) must be in (0, 1) (models use about 1e-6 to 1e-5)")
        }
        guard ropeBase.isFinite, ropeBase > 1, ropeBase <= 1e9 else {
            throw fail("rope base (theta) \(ropeBase) must be in (1, 1e9] (models use 1e4 to 1e6)")
        }
    }
}
