import Foundation
import Tensors

/// A Hugging Face checkpoint in safetensors form: one `model.safetensors`, or shards listed by
/// `model.safetensors.index.json` (its `weight_map` names the shard holding each tensor).
///
/// Usage:
/// ```
/// let checkpoint = try SafetensorsCheckpoint(path: "checkpoints/hf/SmolLM2")  // dir, index or file
/// let w = try checkpoint.tensor(named: "model.embed_tokens.weight")
/// ```
public final class SafetensorsCheckpoint: @unchecked Sendable {
    /// Opened files, by shard file name.
    public let files: [String: SafetensorsFile]
    /// Tensor names, sorted.
    public let tensorNames: [String]
    /// The index's `metadata` (e.g. total_size), or the single file's `__metadata__`.
    public let metadata: [String: String]
    private let owner: [String: SafetensorsFile]

    /// `path` may be a directory (uses model.safetensors.index.json, else model.safetensors),
    /// an index .json file, or a single .safetensors file.
    public convenience init(path: String) throws {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        guard exists else { throw SafetensorsError.cannotOpen(file: fileName(path), reason: "no such file or directory") }
        if isDirectory.boolValue {
            let index = (path as NSString).appendingPathComponent("model.safetensors.index.json")
            let single = (path as NSString).appendingPathComponent("model.safetensors")
            if FileManager.default.fileExists(atPath: index) {
                try self.init(indexPath: index)
            } else if FileManager.default.fileExists(atPath: single) {
                try self.init(singleFile: single)
            } else {
                throw SafetensorsError.cannotOpen(file: fileName(path), reason: "directory holds neither model.safetensors.index.json nor model.safetensors")
            }
        } else if path.hasSuffix(".json") {
            try self.init(indexPath: path)
        } else {
            try self.init(singleFile: path)
        }
    }

    /// The shard file holding `name`, or nil when no shard has it.
    public func file(holding name: String) -> SafetensorsFile? { owner[name] }

    private init(singleFile path: String) throws {
        let file = try SafetensorsFile(path: path)
        files = [fileName(path): file]
        tensorNames = file.tensorNames.sorted()
        metadata = file.metadata
        owner = Dictionary(uniqueKeysWithValues: file.tensorNames.map { ($0, file) })
    }

    private init(indexPath: String) throws {
        let name = fileName(indexPath)
        func invalid(_ reason: String) -> SafetensorsError { .invalidIndex(file: name, reason: reason) }
        let data: Data
        do { data = try InputFile.read(indexPath) } catch let problem as InputFile.Problem {
            throw SafetensorsError.cannotOpen(file: name, reason: problem.reason)
        }
        guard let json = try? JSONSerialization.jsonObject(with: data), let root = json as? [String: Any] else {
            throw invalid("not a JSON object")
        }
        guard let weightMap = root["weight_map"] as? [String: Any] else { throw invalid("missing object 'weight_map'") }
        var metadata: [String: String] = [:]
        if let meta = root["metadata"] as? [String: Any] {
            for (k, v) in meta { metadata[k] = (v as? String) ?? "\(v)" }
        }
        let directory = (indexPath as NSString).deletingLastPathComponent
        var files: [String: SafetensorsFile] = [:]
        var owner: [String: SafetensorsFile] = [:]
        for (tensor, value) in weightMap {
            guard let shard = value as? String else { throw invalid("weight_map entry for '\(tensor)' is not a string") }
            // Shards must sit next to the index: no directories, so a hostile index cannot
            // point at arbitrary files.
            guard !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                throw invalid("shard name '\(shard)' for '\(tensor)' is not a plain file name")
            }
            let file: SafetensorsFile
            if let opened = files[shard] {
                file = opened
            } else {
                file = try SafetensorsFile(path: (directory as NSString).appendingPathComponent(shard))
                files[shard] = file
            }
            guard file.tensorInfo(named: tensor) != nil else {
                throw invalid("weight_map puts '\(tensor)' in \(shard), which has no such tensor")
            }
            owner[tensor] = file
        }
        self.files = files
        self.owner = owner
        self.metadata = metadata
        tensorNames = owner.keys.sorted()
    }

    public func tensorInfo(named name: String) -> SafetensorsTensorInfo? {
        owner[name]?.tensorInfo(named: name)
    }

    /// The tensor called `name` as Float32 (F32, F16 and BF16 are converted).
    public func tensor(named name: String) throws -> Tensor {
        guard let file = owner[name] else {
            throw SafetensorsError.tensorNotFound(file: files.count == 1 ? (files.keys.first ?? "") : "checkpoint", tensor: name)
        }
        return try file.tensor(named: name)
    }
}

/// Writes a single safetensors file of F32 tensors (in the order added) with optional
/// `__metadata__`, atomically (temporary sibling, fsync, rename).
///
/// Usage:
/// ```
/// let writer = SafetensorsWriter(metadata: ["format": "pt"])
/// try writer.addTensor("lora_A", a)
/// try writer.write(to: "adapter_model.safetensors")
/// ```
public final class SafetensorsWriter {
    public var metadata: [String: String]
    private var tensors: [(name: String, tensor: Tensor)] = []

    public init(metadata: [String: String] = [:]) { self.metadata = metadata }

    public func addTensor(_ name: String, _ tensor: Tensor) throws {
        guard name != "__metadata__", !name.isEmpty else {
            throw SafetensorsError.invalidWriterInput(key: name, reason: "reserved or empty tensor name")
        }
        guard !tensors.contains(where: { $0.name == name }) else {
            throw SafetensorsError.invalidWriterInput(key: name, reason: "a tensor of this name was already added")
        }
        tensors.append((name, tensor))
    }

    public func write(to path: String) throws {
        var header = "{"
        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(Self.jsonString($0)):\(Self.jsonString(metadata[$0] ?? ""))" }
            entries.append("\"__metadata__\":{" + pairs.joined(separator: ",") + "}")
        }
        var offset = 0
        for (name, tensor) in tensors {
            let bytes = tensor.count * 4
            let shape = tensor.shape.dims.map(String.init).joined(separator: ",")
            entries.append("\(Self.jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += entries.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }

        let output = try AtomicFileWriter(destination: path) { SafetensorsError.writeFailed(file: fileName(path), reason: $0) }
        do {
            var length = ByteBuilder()
            length.append(UInt64(headerBytes.count))
            try output.write(length.bytes)
            try output.write(headerBytes)
            for (_, tensor) in tensors { try output.write(UnsafeRawBufferPointer(UnsafeBufferPointer(tensor.buffer))) }
        } catch {
            output.abandon()
            throw error
        }
        try output.commit()
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
