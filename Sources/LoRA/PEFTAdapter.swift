import Foundation
import ModelFormats
import Tensors

/// Writes adapters as a Hugging Face PEFT LoRA directory: `adapter_config.json` and
/// `adapter_model.safetensors` (F32), loadable with `PeftModel.from_pretrained(base, dir)`.
///
/// The config uses long-standing keys only, so old and new PEFT versions read it the same way.
/// Tensors are `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r]
/// in Hugging Face row order, which is the order the in-memory model and its adapters already
/// use (the loader un-permutes Llama GGUF q/k rows), so nothing is permuted here. When only
/// some layers are adapted, `layers_to_transform` lists them.
///
/// Usage: `try PEFTAdapterWriter.write(try lora.weights, to: "exports/medical-peft", baseModel: "HuggingFaceTB/SmolLM2-135M-Instruct")`
public enum PEFTAdapterWriter {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"

    public static func write(_ weights: LoRAWeights, to directory: String, baseModel: String? = nil, layerCount: Int? = nil) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw LoRAError.io(path: directory, reason: "cannot create the directory: \(error.localizedDescription)")
        }
        let writer = SafetensorsWriter(metadata: ["format": "pt"])
        for name in weights.orderedModules {
            guard let m = weights.modules[name] else { continue }
            try writer.addTensor("base_model.model.\(name).lora_A.weight", m.a)
            try writer.addTensor("base_model.model.\(name).lora_B.weight", m.b)
        }
        try writer.write(to: (directory as NSString).appendingPathComponent(weightsFile))

        var config: [String: Any] = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM",
            "r": weights.rank, "lora_alpha": jsonNumber(weights.alpha), "lora_dropout": jsonNumber(weights.dropout),
            "target_modules": weights.targetModules, "bias": "none", "fan_in_fan_out": false,
            "use_rslora": weights.useRSLoRA, "use_dora": false, "inference_mode": true,
            "base_model_name_or_path": baseModel ?? NSNull(),
        ]
        // Without it PEFT adapts every layer; listing all layers when the count is unknown is harmless.
        if layerCount.map({ weights.layers != Array(0..<$0) }) ?? true {
            config["layers_to_transform"] = weights.layers
        }
        let data = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted])
        let path = (directory as NSString).appendingPathComponent(configFile)
        guard FileManager.default.createFile(atPath: path, contents: data + Data("\n".utf8)) else {
            throw LoRAError.io(path: path, reason: "cannot write the file")
        }
    }

    /// A Float as the shortest decimal that reads back as it (16 rather than 16.0000001...).
    static func jsonNumber(_ value: Float) -> Any {
        if value == value.rounded(), abs(value) < 1e9 { return Int(value) }
        return Double("\(value)") ?? Double(value)
    }
}

/// Reads a Hugging Face PEFT LoRA directory (`adapter_config.json` + `adapter_model.safetensors`,
/// F32/F16/BF16), rsLoRA included.
///
/// Features this toolkit does not implement are refused with a message naming the key, never
/// ignored: DoRA (`use_dora`), per-module ranks or alphas (`rank_pattern`, `alpha_pattern`),
/// fully trained extra modules (`modules_to_save`), bias training (`bias` other than "none",
/// `lora_bias`), transposed weights (`fan_in_fan_out`), `layer_replication`, trainable tokens,
/// non-LoRA PEFT types, pickled `adapter_model.bin`, and tensors other than lora_A/lora_B of
/// linear projections (embedding adapters, DoRA magnitudes).
///
/// Usage: `let weights = try PEFTAdapterReader.read(directory: "exports/medical-peft")`
public enum PEFTAdapterReader {
    /// What the config says besides the weights.
    public struct Info {
        public var baseModel: String?
        public var targetModules: [String]
    }

    public static func isAdapterDirectory(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent(PEFTAdapterWriter.configFile))
    }

    public static func read(directory: String) throws -> LoRAWeights { try readWithInfo(directory: directory).weights }

    public static func readWithInfo(directory: String) throws -> (weights: LoRAWeights, info: Info) {
        let configPath = (directory as NSString).appendingPathComponent(PEFTAdapterWriter.configFile)
        let data: Data
        do { data = try InputFile.read(configPath) } catch let problem as InputFile.Problem {
            throw LoRAError.io(path: configPath, reason: "cannot read the file: \(problem.reason) (expected a PEFT adapter directory)")
        }
        guard let config = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw LoRAError.io(path: configPath, reason: "not a JSON object")
        }
        func refuse(_ feature: String) -> LoRAError { .unsupported("\(configPath): \(feature)") }
        func isSet(_ key: String) -> Bool {
            switch config[key] {
            case nil, is NSNull: return false
            case let b as Bool: return b
            case let d as [String: Any]: return !d.isEmpty
            case let a as [Any]: return !a.isEmpty
            case let s as String: return !s.isEmpty
            default: return true
            }
        }

        let peftType = config["peft_type"] as? String ?? "LORA"
        guard peftType == "LORA" else { throw refuse("peft_type '\(peftType)' (only LORA adapters are implemented)") }
        if isSet("use_dora") { throw refuse("use_dora: DoRA adapters are not implemented") }
        if isSet("rank_pattern") { throw refuse("rank_pattern: per-module ranks are not implemented") }
        if isSet("alpha_pattern") { throw refuse("alpha_pattern: per-module alphas are not implemented") }
        if isSet("modules_to_save") { throw refuse("modules_to_save \(config["modules_to_save"] ?? ""): fully trained extra modules are not implemented") }
        if let bias = config["bias"] as? String, bias != "none" { throw refuse("bias '\(bias)': only bias \"none\" is implemented") }
        if isSet("lora_bias") { throw refuse("lora_bias: LoRA B biases are not implemented") }
        if isSet("fan_in_fan_out") { throw refuse("fan_in_fan_out: transposed (Conv1D) weights are not implemented") }
        if isSet("layer_replication") { throw refuse("layer_replication is not implemented") }
        if isSet("trainable_token_indices") { throw refuse("trainable_token_indices is not implemented") }
        if isSet("target_parameters") { throw refuse("target_parameters (adapters on parameters) is not implemented") }
        if isSet("use_qalora") { throw refuse("use_qalora is not implemented") }
        guard let rank = (config["r"] as? NSNumber)?.intValue, rank >= 1 else { throw refuse("'r' is missing or not a positive integer") }
        let alpha = (config["lora_alpha"] as? NSNumber)?.floatValue ?? 8  // PEFT's default
        let useRSLoRA = config["use_rslora"] as? Bool ?? false
        let dropout = (config["lora_dropout"] as? NSNumber)?.floatValue ?? 0

        let weightsPath = (directory as NSString).appendingPathComponent(PEFTAdapterWriter.weightsFile)
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            if FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("adapter_model.bin")) {
                throw LoRAError.unsupported("\(directory): adapter_model.bin (pickle) is not read; re-save the adapter with safe_serialization=True")
            }
            throw LoRAError.io(path: weightsPath, reason: "missing")
        }
        let file = try SafetensorsFile(path: weightsPath)
        var a: [String: Tensor] = [:], b: [String: Tensor] = [:]
        for name in file.tensorNames {
            guard let (module, which) = parseKey(name) else {
                throw LoRAError.unsupported("\(weightsPath): tensor '\(name)' is not lora_A/lora_B of a linear projection (only those are implemented)")
            }
            guard LoRAModulePath(module) != nil else {
                throw LoRAError.unknownModule("\(module) (from \(weightsPath); adapters attach to model.layers.N.self_attn.{q,k,v,o}_proj and model.layers.N.mlp.{gate,up,down}_proj of Llama/Qwen models)")
            }
            let t = try file.tensor(named: name)
            if which == "A" { a[module] = t } else { b[module] = t }
        }
        var modules: [String: LoRAWeights.Module] = [:]
        for module in Set(a.keys).union(b.keys) {
            guard let ma = a[module], let mb = b[module] else {
                throw LoRAError.io(path: weightsPath, reason: "\(module) has only one of lora_A and lora_B")
            }
            modules[module] = .init(a: ma, b: mb)
        }
        let weights = try LoRAWeights(rank: rank, alpha: alpha, useRSLoRA: useRSLoRA, dropout: dropout, modules: modules)

        // Every weight must be one PEFT would create from this config, or it would be ignored there.
        var targets: [String] = []
        if let list = config["target_modules"] as? [String] {
            targets = list
            for module in weights.modules.keys {
                guard let short = LoRAModulePath(module)?.projection, list.contains(short) || list.contains(module) else {
                    throw refuse("\(module) has weights but target_modules \(list) does not include it")
                }
            }
        } else if let pattern = config["target_modules"] as? String, pattern != "all-linear" {
            let regex = try NSRegularExpression(pattern: "^(?:\(pattern))$")
            for module in weights.modules.keys where regex.firstMatch(in: module, range: NSRange(module.startIndex..., in: module)) == nil {
                throw refuse("\(module) has weights but target_modules '\(pattern)' does not match it")
            }
        }
        if let layers = (config["layers_to_transform"] as? [NSNumber])?.map(\.intValue) ?? (config["layers_to_transform"] as? NSNumber).map({ [$0.intValue] }) {
            for module in weights.modules.keys {
                guard let layer = LoRAModulePath(module)?.layer, layers.contains(layer) else {
                    throw refuse("\(module) has weights but layers_to_transform \(layers) does not include its layer")
                }
            }
        }
        return (weights, Info(baseModel: config["base_model_name_or_path"] as? String, targetModules: targets.isEmpty ? weights.targetModules : targets))
    }

    /// `base_model.model.<module>.lora_A.weight` (optionally with the adapter name `.default`)
    /// -> (module, "A" or "B").
    static func parseKey(_ key: String) -> (String, String)? {
        let prefix = "base_model.model."
        guard key.hasPrefix(prefix) else { return nil }
        var rest = String(key.dropFirst(prefix.count))
        for (suffix, which) in [(".lora_A.weight", "A"), (".lora_B.weight", "B"), (".lora_A.default.weight", "A"), (".lora_B.default.weight", "B")] {
            if rest.hasSuffix(suffix) {
                rest.removeLast(suffix.count)
                return (rest, which)
            }
        }
        return nil
    }
}
