import Foundation

/// A human-readable description of a weight file: what `thoughtcrime inspect` prints.
///
/// Usage: `print(try FileSummary(path: "model.gguf").lines.joined(separator: "\n"))`
public struct FileSummary {
    public var format: String
    /// Key facts in display order.
    public var fields: [(key: String, value: String)]
    /// One line per tensor: name, type, shape.
    public var tensors: [(name: String, type: String, shape: [Int])]

    /// Reads the header of a GGUF file, a safetensors file, or a directory or index of
    /// safetensors shards.
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SafetensorsError.cannotOpen(file: path, reason: "no such file or directory")
        }
        if !isDirectory.boolValue, let handle = FileHandle(forReadingAtPath: path),
            let magic = try? handle.read(upToCount: 4), magic == Data("GGUF".utf8)
        {
            try self.init(gguf: GGUFFile(path: path))
        } else {
            try self.init(safetensors: SafetensorsCheckpoint(path: path), path: path)
        }
    }

    init(gguf file: GGUFFile) {
        format = "GGUF v\(file.version)"
        fields = [("alignment", "\(file.alignment)"), ("tensors", "\(file.tensors.count)")]
        let parameters = file.tensors.reduce(0) { $0 + $1.elementCount }
        fields.append(("parameters", Self.compact(parameters)))
        var byType: [String: Int] = [:]
        for t in file.tensors { byType[t.type.description, default: 0] += 1 }
        fields.append(("tensor types", byType.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")))
        for key in file.metadataKeys {
            guard let value = file.metadata[key] else { continue }
            fields.append((key, Self.describe(value)))
        }
        tensors = file.tensors.map { ($0.name, $0.type.description, $0.shape.dims) }
    }

    init(safetensors checkpoint: SafetensorsCheckpoint, path: String) throws {
        format = checkpoint.files.count > 1 ? "safetensors (\(checkpoint.files.count) shards)" : "safetensors"
        var parameters = 0
        var byType: [String: Int] = [:]
        tensors = []
        for name in checkpoint.tensorNames {
            guard let info = checkpoint.tensorInfo(named: name) else { continue }
            parameters += info.shape.count
            byType[info.dtype.rawValue, default: 0] += 1
            tensors.append((name, info.dtype.rawValue, info.shape.dims))
        }
        fields = [("tensors", "\(tensors.count)"), ("parameters", Self.compact(parameters)),
                  ("tensor types", byType.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", "))]
        for (k, v) in checkpoint.metadata.sorted(by: { $0.key < $1.key }) { fields.append((k, v)) }
    }

    /// The summary as text lines; tensors listed up to `maxTensors`.
    public func lines(maxTensors: Int = 40) -> [String] {
        var out = ["format: \(format)"]
        out += fields.map { "\($0.key): \($0.value)" }
        out.append("tensors:")
        for t in tensors.prefix(maxTensors) { out.append("  \(t.name)  \(t.type)  \(t.shape)") }
        if tensors.count > maxTensors { out.append("  ... \(tensors.count - maxTensors) more") }
        return out
    }

    static func compact(_ n: Int) -> String {
        n >= 1_000_000 ? String(format: "%.1fM (%d)", Double(n) / 1e6, n) : "\(n)"
    }

    /// Long arrays (vocabularies, merges) are shown by length and first elements only.
    static func describe(_ value: GGUFMetadataValue) -> String {
        switch value {
        case .string(let s): return s.count > 120 ? "\(s.prefix(120).debugDescription)... (\(s.count) characters)" : s.debugDescription
        case .array(let items):
            let head = items.prefix(5).map(describe).joined(separator: ", ")
            return items.count > 5 ? "[\(head), ...] (\(items.count) items)" : "[\(head)]"
        default:
            if let i = value.intValue { return "\(i)" }
            if let b = value.boolValue { return "\(b)" }
            if let d = value.doubleValue { return "\(d)" }
            return "\(value)"
        }
    }
}
