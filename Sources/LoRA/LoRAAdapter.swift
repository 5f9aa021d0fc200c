import Autodiff
import Foundation
import Models
import Tensors

/// A low-rank update of one frozen projection: y = W x + scale * B (A dropout(x)).
///
/// A [rank, in] starts Kaiming-uniform (a = sqrt(5), as PEFT and torch.nn.Linear initialise
/// it: bound 1/sqrt(in)), B [out, rank] starts at zero, so a fresh adapter leaves the model
/// unchanged. Dropout applies to the adapter's input only, during training.
///
/// Usage: `layer.adapter = LoRAAdapter(module: layer.name, inFeatures: 576, outFeatures: 576, spec: spec, seed: 1)`
public final class LoRAAdapter: LinearAdapter {
    public let module: String
    public let a: Variable
    public let b: Variable
    public var scale: Float
    public let dropout: Float
    /// Seed of the current step's dropout mask; the trainer sets it before each forward pass.
    public var dropoutSeed: UInt64 = 0

    public init(module: String, a: Tensor, b: Tensor, scale: Float, dropout: Float = 0) throws {
        guard a.shape.rank == 2, b.shape.rank == 2, b.shape[1] == a.shape[0] else {
            throw LoRAError.shapeMismatch(module: module, tensor: "lora_B", expected: [b.shape.dims.first ?? 0, a.shape.dims.first ?? 0], found: b.shape.dims)
        }
        self.module = module
        self.a = Variable(a, requiresGrad: true)
        self.b = Variable(b, requiresGrad: true)
        self.scale = scale
        self.dropout = dropout
    }

    /// A fresh adapter initialised as PEFT does, deterministically from `seed`.
    public convenience init(module: String, inFeatures: Int, outFeatures: Int, spec: LoRASpec, seed: UInt64) throws {
        let a = Tensor(uninitialized: [spec.rank, inFeatures])
        var rng = SeededGenerator(seed: seed)
        let bound = 1 / Double(inFeatures).squareRoot()
        for i in 0..<a.count { a[flat: i] = Float((rng.nextUnit() * 2 - 1) * bound) }
        try self.init(module: module, a: a, b: Tensor(zeros: [outFeatures, spec.rank]), scale: spec.scale, dropout: spec.dropout)
    }

    public var rank: Int { a.shape[0] }
    public var inFeatures: Int { a.shape[1] }
    public var outFeatures: Int { b.shape[0] }

    public func callAsFunction(_ tape: Tape, input x: Variable, weight: FrozenMatrix, bias: Variable?) throws -> Variable {
        let xd = tape.isTraining && dropout > 0 ? try tape.dropout(x, probability: dropout, seed: dropoutSeed) : x
        // W x + scale * B (A xd): [rows, in] -> [rows, out] through [rows, rank]
        return try tape.linear(x, frozen: weight, bias: bias, lowRankA: a, lowRankB: b, scale: scale, lowRankInput: xd)
    }

    /// scale * B A, the dense update this adapter adds to W [out, in] (for merging and export checks).
    public func deltaWeight() throws -> Tensor {
        try b.value.matmul(a.value).scaled(by: scale)
    }
}

/// The adapters attached to one model, keyed by Hugging Face module path.
public final class LoRAModel {
    public let spec: LoRASpec
    public let model: TransformerModel
    /// In model order (layer, then q, k, v, o, gate, up, down).
    public let adapters: [LoRAAdapter]

    /// Creates fresh adapters for the spec's targets and attaches them to `model`'s layers.
    ///
    /// Usage: `let lora = try LoRAModel(attachingTo: model, spec: spec, seed: 1234)`
    public init(attachingTo model: TransformerModel, spec: LoRASpec, seed: UInt64) throws {
        let layerCount = model.blocks.count
        for l in spec.layers ?? [] where l < 0 || l >= layerCount {
            throw LoRAError.layerOutOfRange(layer: l, layerCount: layerCount)
        }
        let layers = Set(spec.layers ?? Array(0..<layerCount))
        var adapters: [LoRAAdapter] = []
        for (l, block) in model.blocks.enumerated() where layers.contains(l) {
            for linear in block.linears {
                guard let short = linear.name.split(separator: ".").last.map(String.init),
                    spec.targetModules.contains(short)
                else { continue }
                // Distinct, reproducible initialisation per module.
                let moduleSeed = seed &+ UInt64(adapters.count + 1) &* 0x9E37_79B9_7F4A_7C15
                let adapter = try LoRAAdapter(
                    module: linear.name, inFeatures: linear.inFeatures, outFeatures: linear.outFeatures,
                    spec: spec, seed: moduleSeed)
                linear.adapter = adapter
                adapters.append(adapter)
            }
        }
        self.spec = spec
        self.model = model
        self.adapters = adapters
    }

    /// Attaches existing adapters (an import or a checkpoint) to `model`'s layers.
    ///
    /// Every module must exist in the model and fit it: A [rank, in], B [out, rank]. A module
    /// or shape that does not fit (an adapter for another model or architecture) fails naming
    /// the module and both shapes, before anything is attached. The matrices are copied.
    ///
    /// Usage: `let lora = try LoRAModel(attaching: try PEFTAdapterReader.read(directory: dir), to: model)`
    public init(attaching weights: LoRAWeights, to model: TransformerModel) throws {
        let linears = Dictionary(uniqueKeysWithValues: model.linears.map { ($0.name, $0) })
        var adapters: [LoRAAdapter] = []
        for name in weights.orderedModules {
            guard let m = weights.modules[name] else { continue }
            guard let linear = linears[name] else {
                throw LoRAError.unknownModule("\(name) (the model has \(model.blocks.count) layers of \(LoRASpec.allTargetModules.joined(separator: ", ")))")
            }
            try Self.checkFits(module: name, a: m.a, b: m.b, linear: linear, rank: weights.rank)
            adapters.append(try LoRAAdapter(module: name, a: m.a.copy(), b: m.b.copy(), scale: weights.scale, dropout: weights.dropout))
        }
        for adapter in adapters { linears[adapter.module]?.adapter = adapter }
        // Modules that are not every target in every layer get the closest spec (it only describes them).
        if let exact = try? weights.spec(layerCount: model.blocks.count) {
            self.spec = exact
        } else {
            self.spec = try LoRASpec(rank: weights.rank, alpha: weights.alpha, useRSLoRA: weights.useRSLoRA, dropout: weights.dropout,
                                     targetModules: weights.targetModules, layers: weights.layers)
        }
        self.model = model
        self.adapters = adapters
    }

    static func checkFits(module: String, a: Tensor, b: Tensor, linear: Linear, rank: Int) throws {
        guard a.shape.dims == [rank, linear.inFeatures] else {
            throw LoRAError.shapeMismatch(module: module, tensor: "lora_A", expected: [rank, linear.inFeatures], found: a.shape.dims)
        }
        guard b.shape.dims == [linear.outFeatures, rank] else {
            throw LoRAError.shapeMismatch(module: module, tensor: "lora_B", expected: [linear.outFeatures, rank], found: b.shape.dims)
        }
        for (name, t) in [("lora_A", a), ("lora_B", b)] {
            let p = t.pointer
            for i in 0..<t.count where !p[i].isFinite {
                throw LoRAError.nonFinite(module: module, tensor: name, index: i, value: p[i])
            }
        }
    }

    /// The adapters' current matrices (copies), for export.
    public var weights: LoRAWeights {
        get throws {
            var modules: [String: LoRAWeights.Module] = [:]
            for a in adapters { modules[a.module] = .init(a: a.a.value.copy(), b: a.b.value.copy()) }
            return try LoRAWeights(rank: spec.rank, alpha: spec.alpha, useRSLoRA: spec.useRSLoRA, dropout: spec.dropout, modules: modules)
        }
    }

    /// Overwrites the attached adapters' A and B with `weights` (to start training from an
    /// existing adapter). The modules must be exactly this model's adapted modules, with the
    /// same rank and scale.
    public func load(_ weights: LoRAWeights) throws {
        guard weights.rank == spec.rank, weights.scale == spec.scale else {
            throw LoRAError.invalidSpec("the adapter has rank \(weights.rank) and scale \(weights.scale); these adapters have rank \(spec.rank) and scale \(spec.scale)")
        }
        let expected = Set(adapters.map(\.module)), found = Set(weights.modules.keys)
        guard expected == found else {
            let missing = expected.subtracting(found).sorted(), extra = found.subtracting(expected).sorted()
            throw LoRAError.invalidSpec("the adapter's modules differ: missing \(missing.prefix(3))\(missing.count > 3 ? "..." : ""), unexpected \(extra.prefix(3))\(extra.count > 3 ? "..." : "")")
        }
        let linears = Dictionary(uniqueKeysWithValues: model.linears.map { ($0.name, $0) })
        for adapter in adapters {
            guard let m = weights.modules[adapter.module], let linear = linears[adapter.module] else { continue }
            try Self.checkFits(module: adapter.module, a: m.a, b: m.b, linear: linear, rank: spec.rank)
        }
        for adapter in adapters {
            guard let m = weights.modules[adapter.module] else { continue }
            try adapter.a.value.assign(m.a)
            try adapter.b.value.assign(m.b)
        }
    }

    /// Trainable parameters: A and B of every adapter, in a fixed order.
    public var parameters: [Variable] { adapters.flatMap { [$0.a, $0.b] } }

    public var parameterCount: Int { adapters.reduce(0) { $0 + $1.a.value.count + $1.b.value.count } }

    public func adapter(for module: String) -> LoRAAdapter? { adapters.first { $0.module == module } }

    /// Sets every adapter's dropout seed for the next forward pass.
    public func setDropoutSeed(_ seed: UInt64) {
        for (i, a) in adapters.enumerated() { a.dropoutSeed = seed &+ UInt64(i) &* 0xD1B5_4A32_D192_ED03 }
    }

    /// Removes the adapters from the model's layers.
    public func detach() {
        for block in model.blocks { for linear in block.linears where adapters.contains(where: { $0 === linear.adapter }) { linear.adapter = nil } }
    }
}
