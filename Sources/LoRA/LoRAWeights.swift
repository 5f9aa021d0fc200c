import Foundation
import Models
import Tensors

/// A set of trained adapters detached from any model: what export writes and import reads.
///
/// Matrices are in PEFT's layout and Hugging Face row order: A [rank, in], B [out, rank],
/// keyed by Hugging Face module path. The in-memory model already runs in that layout (the
/// loader un-permutes Llama GGUF q/k rows), so weights taken from a `LoRAModel` need no
/// conversion for PEFT; only the llama.cpp GGUF export re-permutes B of q_proj and k_proj.
///
/// Usage:
/// ```
/// let weights = lora.weights                        // from a trained LoRAModel
/// try PEFTAdapterWriter.write(weights, to: "out/peft")
/// let lora2 = try LoRAModel(attaching: try PEFTAdapterReader.read(directory: "out/peft"), to: model)
/// ```
public struct LoRAWeights {
    public struct Module {
        public var a: Tensor
        public var b: Tensor
        public init(a: Tensor, b: Tensor) { self.a = a; self.b = b }
    }

    public var rank: Int
    public var alpha: Float
    public var useRSLoRA: Bool
    /// Training-time dropout (recorded in exports; no effect on inference).
    public var dropout: Float
    /// Keyed by Hugging Face module path, e.g. `model.layers.0.self_attn.q_proj`.
    public var modules: [String: Module]

    /// Checks every module path and shape: A [rank, in] and B [out, rank] with one rank.
    public init(rank: Int, alpha: Float, useRSLoRA: Bool, dropout: Float = 0, modules: [String: Module]) throws {
        guard rank >= 1 else { throw LoRAError.invalidSpec("rank must be at least 1, got \(rank)") }
        guard alpha.isFinite, alpha > 0 else { throw LoRAError.invalidSpec("alpha must be positive, got \(alpha)") }
        guard !modules.isEmpty else { throw LoRAError.invalidSpec("the adapter has no modules") }
        for (name, m) in modules {
            guard LoRAModulePath(name) != nil else { throw LoRAError.unknownModule(name) }
            guard m.a.shape.rank == 2, m.a.shape[0] == rank else {
                throw LoRAError.shapeMismatch(module: name, tensor: "lora_A", expected: [rank, m.a.shape.dims.last ?? 0], found: m.a.shape.dims)
            }
            guard m.b.shape.rank == 2, m.b.shape[1] == rank else {
                throw LoRAError.shapeMismatch(module: name, tensor: "lora_B", expected: [m.b.shape.dims.first ?? 0, rank], found: m.b.shape.dims)
            }
        }
        self.rank = rank; self.alpha = alpha; self.useRSLoRA = useRSLoRA; self.dropout = dropout; self.modules = modules
    }

    /// The factor applied to B A x: alpha / rank, or alpha / sqrt(rank) with rsLoRA.
    public var scale: Float { useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }

    /// Module paths in model order (layer, then q, k, v, o, gate, up, down).
    public var orderedModules: [String] {
        modules.keys.compactMap { LoRAModulePath($0) }.sorted().map(\.path)
    }

    /// Projection names present (q_proj, ...), in model order.
    public var targetModules: [String] {
        let present = Set(modules.keys.compactMap { LoRAModulePath($0)?.projection })
        return LoRASpec.allTargetModules.filter(present.contains)
    }

    /// Layer indices present, ascending.
    public var layers: [Int] { Array(Set(modules.keys.compactMap { LoRAModulePath($0)?.layer })).sorted() }

    /// The spec that describes these adapters on a model with `layerCount` layers (layers nil
    /// when every layer is adapted). Throws when the modules are not every target in every
    /// listed layer, which a spec cannot express (and `LoRAModel(attachingTo:spec:seed:)` would
    /// not recreate).
    public func spec(layerCount: Int) throws -> LoRASpec {
        let targets = targetModules, layers = layers
        let expected = Set(layers.flatMap { l in targets.compactMap { LoRAModulePath(layer: l, projection: $0)?.path } })
        guard expected == Set(modules.keys) else {
            let missing = expected.subtracting(modules.keys).sorted()
            throw LoRAError.unsupported("the adapter covers \(targets.joined(separator: ",")) in layers \(layers) but not every combination (missing \(missing.prefix(3).joined(separator: ", "))\(missing.count > 3 ? ", ..." : ""))")
        }
        return try LoRASpec(rank: rank, alpha: alpha, useRSLoRA: useRSLoRA, dropout: dropout, targetModules: targets,
                            layers: layers == Array(0..<layerCount) ? nil : layers)
    }

    /// Deterministic non-trivial adapters for tests and reference fixtures.
    ///
    /// For the i-th adapted module in model order (i from 0), a `SeededGenerator` seeded with
    /// `seed &+ (i + 1) &* 0x9E3779B97F4A7C15` fills A row-major with (2u - 1) / sqrt(in), then
    /// B row-major with (2u - 1) * magnitude / (scale * sqrt(rank)), u uniform in [0, 1). Dividing by
    /// the scale keeps the update's size comparable across ranks and rsLoRA settings.
    ///
    /// Usage: `let w = try LoRAWeights.seededRandom(for: model, spec: spec, seed: 7)`
    public static func seededRandom(for model: TransformerModel, spec: LoRASpec, seed: UInt64, magnitude: Double = 0.3) throws -> LoRAWeights {
        let layerCount = model.blocks.count
        for l in spec.layers ?? [] where l < 0 || l >= layerCount {
            throw LoRAError.layerOutOfRange(layer: l, layerCount: layerCount)
        }
        let layers = Set(spec.layers ?? Array(0..<layerCount))
        var modules: [String: Module] = [:]
        var index: UInt64 = 0
        for (l, block) in model.blocks.enumerated() where layers.contains(l) {
            for linear in block.linears {
                guard let path = LoRAModulePath(linear.name), spec.targetModules.contains(path.projection) else { continue }
                index += 1
                var rng = SeededGenerator(seed: seed &+ index &* 0x9E37_79B9_7F4A_7C15)
                let a = Tensor(uninitialized: [spec.rank, linear.inFeatures])
                let b = Tensor(uninitialized: [linear.outFeatures, spec.rank])
                let aBound = 1 / Double(linear.inFeatures).squareRoot()
                let bBound = magnitude / (Double(spec.scale) * Double(spec.rank).squareRoot())
                for j in 0..<a.count { a[flat: j] = Float((rng.nextUnit() * 2 - 1) * aBound) }
                for j in 0..<b.count { b[flat: j] = Float((rng.nextUnit() * 2 - 1) * bBound) }
                modules[linear.name] = Module(a: a, b: b)
            }
        }
        return try LoRAWeights(rank: spec.rank, alpha: spec.alpha, useRSLoRA: spec.useRSLoRA, dropout: spec.dropout, modules: modules)
    }
}

/// A Hugging Face decoder module path, `model.layers.<layer>.<self_attn|mlp>.<projection>`.
public struct LoRAModulePath: Comparable, Hashable, Sendable {
    public let layer: Int
    /// q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj.
    public let projection: String

    public init?(_ path: String) {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]), layer >= 0,
              String(layer) == parts[2] else { return nil }
        self.init(layer: layer, projection: parts[4])
        guard self.path == path else { return nil }
    }

    public init?(layer: Int, projection: String) {
        guard LoRASpec.allTargetModules.contains(projection), layer >= 0 else { return nil }
        self.layer = layer; self.projection = projection
    }

    public var path: String {
        let group = ["gate_proj", "up_proj", "down_proj"].contains(projection) ? "mlp" : "self_attn"
        return "model.layers.\(layer).\(group).\(projection)"
    }

    /// llama.cpp's tensor name stem, e.g. `blk.0.attn_q`.
    public var ggufName: String {
        let name = ["q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
                    "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"][projection] ?? projection
        return "blk.\(layer).\(name)"
    }

    /// The module a llama.cpp stem such as `blk.3.ffn_up` names.
    public init?(ggufName: String) {
        let parts = ggufName.split(separator: ".").map(String.init)
        let projections = ["attn_q": "q_proj", "attn_k": "k_proj", "attn_v": "v_proj", "attn_output": "o_proj",
                           "ffn_gate": "gate_proj", "ffn_up": "up_proj", "ffn_down": "down_proj"]
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]), let projection = projections[parts[2]] else { return nil }
        self.init(layer: layer, projection: projection)
    }

    var order: Int { LoRASpec.allTargetModules.firstIndex(of: projection) ?? 0 }

    public static func < (lhs: LoRAModulePath, rhs: LoRAModulePath) -> Bool {
        (lhs.layer, lhs.order) < (rhs.layer, rhs.order)
    }
}

/// convert_hf_to_gguf's `permute` for Llama q_proj/k_proj rows and its inverse. Each head's
/// rows (pairs i and i + headDim/2 in Hugging Face order) are interleaved as 2i, 2i + 1 for
/// llama.cpp's rotary embedding. The permutation depends only on headDim.
public enum LlamaRowPermutation {
    /// Rows of `tensor` [heads * headDim, cols] reordered from Hugging Face to GGUF order.
    public static func hfToGGUF(_ tensor: Tensor, headDim: Int) throws -> Tensor {
        try reorder(tensor, headDim: headDim, toGGUF: true)
    }

    /// Rows of `tensor` reordered from GGUF to Hugging Face order.
    public static func ggufToHF(_ tensor: Tensor, headDim: Int) throws -> Tensor {
        try reorder(tensor, headDim: headDim, toGGUF: false)
    }

    private static func reorder(_ tensor: Tensor, headDim: Int, toGGUF: Bool) throws -> Tensor {
        guard tensor.shape.rank == 2 || tensor.shape.rank == 1, headDim > 0, headDim % 2 == 0,
              tensor.shape[0] % headDim == 0 else {
            throw LoRAError.invalidSpec("cannot permute rows of a \(tensor.shape.dims) tensor in heads of \(headDim)")
        }
        let rows = tensor.shape[0], cols = tensor.shape.rank == 2 ? tensor.shape[1] : 1
        // order[hfRow] = ggufRow
        let order = ModelLoader.ggufToHFRowOrder(heads: rows / headDim, headDim: headDim)
        let source = tensor.copy(), out = Tensor(uninitialized: tensor.shape)
        for (hfRow, ggufRow) in order.enumerated() {
            let (dst, src) = toGGUF ? (ggufRow, hfRow) : (hfRow, ggufRow)
            (out.pointer + dst * cols).update(from: source.pointer + src * cols, count: cols)
        }
        return out
    }
}
