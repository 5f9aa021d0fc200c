import Models

/// Which projections get adapters and how they are scaled.
///
/// Usage: `let spec = try LoRASpec(rank: 8, alpha: 16, targetModules: ["q_proj", "v_proj"])`
public struct LoRASpec: Equatable, Sendable {
    /// Projection names adapters can target, as Hugging Face and PEFT call them.
    public static let allTargetModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    public var rank: Int
    public var alpha: Float
    /// rsLoRA: scale alpha / sqrt(rank) instead of alpha / rank.
    public var useRSLoRA: Bool
    public var dropout: Float
    public var targetModules: [String]
    /// Layer indices to adapt; nil adapts every layer.
    public var layers: [Int]?

    public init(
        rank: Int, alpha: Float, useRSLoRA: Bool = false, dropout: Float = 0,
        targetModules: [String] = LoRASpec.allTargetModules, layers: [Int]? = nil
    ) throws {
        guard rank >= 1 else { throw LoRAError.invalidSpec("rank must be at least 1, got \(rank)") }
        guard alpha > 0, alpha.isFinite else { throw LoRAError.invalidSpec("alpha must be positive, got \(alpha)") }
        guard dropout >= 0, dropout < 1 else { throw LoRAError.invalidSpec("dropout must be in [0, 1), got \(dropout)") }
        guard !targetModules.isEmpty else { throw LoRAError.invalidSpec("target_modules is empty") }
        for m in targetModules where !LoRASpec.allTargetModules.contains(m) {
            throw LoRAError.invalidSpec("unknown target module '\(m)'; valid: \(LoRASpec.allTargetModules.joined(separator: ", "))")
        }
        self.rank = rank; self.alpha = alpha; self.useRSLoRA = useRSLoRA; self.dropout = dropout
        self.targetModules = targetModules; self.layers = layers
    }

    /// The factor applied to B A x.
    public var scale: Float { useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }
}

/// Errors from building, attaching, saving or loading adapters.
public enum LoRAError: Error, Equatable, CustomStringConvertible {
    case invalidSpec(String)
    case layerOutOfRange(layer: Int, layerCount: Int)
    case shapeMismatch(module: String, tensor: String, expected: [Int], found: [Int])
    case unknownModule(String)
    case unsupported(String)
    case io(path: String, reason: String)
    /// A matrix holds NaN or an infinity: merging or exporting it would spread it silently.
    case nonFinite(module: String, tensor: String, index: Int, value: Float)

    public var description: String {
        switch self {
        case .invalidSpec(let m): return "invalid LoRA settings: \(m)"
        case let .layerOutOfRange(layer, count): return "LoRA layer \(layer) does not exist; the model has layers 0..<\(count)"
        case let .shapeMismatch(module, tensor, expected, found):
            return "\(module).\(tensor): adapter shape \(found) does not fit the model, expected \(expected)"
        case .unknownModule(let m): return "adapter module '\(m)' does not exist in this model"
        case .unsupported(let m): return "unsupported adapter feature: \(m)"
        case let .io(path, reason): return "\(path): \(reason)"
        case let .nonFinite(module, tensor, index, value):
            return "\(module).\(tensor) holds \(value) at element \(index); the adapter is damaged or diverged"
        }
    }
}
