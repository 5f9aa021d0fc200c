import Foundation
import ModelFormats
import LoRA
import Models

/// Reads adapters from anything the toolkit writes or imports: a PEFT directory, a run
/// directory (its latest checkpoint), a checkpoint `.h5` file, or a llama.cpp LoRA `.gguf`.
///
/// Lives in Training (not LoRA) because checkpoints are Training's format.
///
/// Usage:
/// ```
/// let adapter = try AdapterSource.load(path: "checkpoints/medical", modelConfig: loaded.model.config)
/// let lora = try LoRAModel(attaching: adapter.weights, to: loaded.model)
/// ```
public enum AdapterSource {
    public enum Kind: String, Sendable { case peft, checkpoint, ggufLoRA = "gguf-lora" }

    public struct Loaded {
        public var weights: LoRAWeights
        public var kind: Kind
        /// The file or directory actually read (a run directory resolves to its latest checkpoint).
        public var path: String
        /// The base model the adapter was trained on, when recorded (checkpoint config
        /// `model.path`, PEFT `base_model_name_or_path`).
        public var baseModel: String?
        /// The base model's fingerprint, for checkpoints.
        public var baseFingerprint: String?
        /// Newer checkpoints of a run directory that were damaged and passed over.
        public var warnings: [String] = []
    }

    /// A checkpoint file, or the newest readable checkpoint of a run directory.
    private static func checkpoint(_ path: String, resolved file: String) throws -> CheckpointReader.LatestReadable {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return try CheckpointReader.readLatest(in: path)
        }
        return .init(path: file, state: try CheckpointReader.read(file), skipped: [])
    }

    /// What `path` holds, and the file to read.
    public static func resolve(_ path: String) throws -> (kind: Kind, path: String) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw LoRAError.io(path: path, reason: "no such file or directory (expected a PEFT adapter directory, a run directory, a checkpoint .h5 or a LoRA .gguf)")
        }
        if isDirectory.boolValue {
            if PEFTAdapterReader.isAdapterDirectory(path) { return (.peft, path) }
            do {
                return (.checkpoint, try CheckpointReader.latestCheckpoint(in: path))
            } catch {
                throw LoRAError.io(path: path, reason: "neither a PEFT adapter directory (no adapter_config.json) nor a run directory (no step-*.h5 checkpoint)")
            }
        }
        if path.hasSuffix(".gguf") { return (.ggufLoRA, path) }
        // RUN/best and RUN/latest name a checkpoint beside them.
        let name = (path as NSString).lastPathComponent
        if name == CheckpointFormat.bestPointer || name == CheckpointFormat.latestPointer {
            let text = (try? InputFile.readText(path, limit: 1 << 20))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            guard CheckpointFormat.step(ofFileName: text) != nil else {
                throw LoRAError.io(path: path, reason: "a pointer file should name a step-*.h5 checkpoint beside it; it holds '\(ErrorText.bounded(text))'")
            }
            return (.checkpoint, ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(text))
        }
        return (.checkpoint, path)
    }

    /// The base model recorded with the adapter, without reading its weights into a model.
    public static func baseModel(of path: String) throws -> String? {
        let (kind, file) = try resolve(path)
        switch kind {
        case .peft: return try PEFTAdapterReader.readWithInfo(directory: file).info.baseModel
        case .checkpoint:
            let latest = try checkpoint(path, resolved: file)
            return try RunConfig.parse(yaml: latest.state.configYAML, source: latest.path).resolvingStoredPaths().model.path
        case .ggufLoRA: return nil
        }
    }

    /// Reads the adapter. `modelConfig` is needed for llama.cpp LoRA files (their q/k rows are
    /// un-permuted per head, and their architecture is checked against the model's).
    public static func load(path: String, modelConfig: TransformerConfig?) throws -> Loaded {
        let (kind, file) = try resolve(path)
        switch kind {
        case .peft:
            let (weights, info) = try PEFTAdapterReader.readWithInfo(directory: file)
            return Loaded(weights: weights, kind: kind, path: file, baseModel: info.baseModel, baseFingerprint: nil)
        case .checkpoint:
            let latest = try checkpoint(path, resolved: file)
            let state = latest.state
            let config = (try? RunConfig.parse(yaml: state.configYAML, source: latest.path))?.resolvingStoredPaths()
            var weights = try state.adapter.loraWeights()
            weights.dropout = Float(config?.lora.dropout ?? 0)
            return Loaded(weights: weights, kind: kind, path: latest.path, baseModel: config?.model.path,
                          baseFingerprint: state.baseFingerprint, warnings: latest.warnings)
        case .ggufLoRA:
            guard let modelConfig else {
                throw LoRAError.invalidSpec("\(file): reading a llama.cpp LoRA needs the base model's configuration")
            }
            return Loaded(weights: try GGUFLoRAReader.read(path: file, for: modelConfig), kind: kind, path: file, baseModel: nil, baseFingerprint: nil)
        }
    }
}

extension CheckpointState.Adapter {
    /// The checkpoint's adapters as `LoRAWeights` (same layout: A [rank, in], B [out, rank]).
    public func loraWeights() throws -> LoRAWeights {
        try LoRAWeights(rank: rank, alpha: Float(alpha), useRSLoRA: useRSLoRA,
                        modules: modules.mapValues { LoRAWeights.Module(a: $0.a, b: $0.b) })
    }
}
