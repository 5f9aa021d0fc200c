import CKernels
import Tensors

/// Builds a GGUF file (version 3 by default): metadata of every GGUF type including arrays,
/// and F32, F16, Q8_0 or Q4_0 tensors (raw blocks of any type for test files). The file is written to a
/// temporary sibling and renamed into place.
///
/// Usage:
/// ```
/// let writer = GGUFWriter()
/// try writer.setMetadata("general.architecture", .string("llama"))
/// try writer.addTensor("output_norm.weight", norm)            // F32
/// try writer.addTensor("token_embd.weight", embd, as: .f16)
/// try writer.write(to: "out.gguf")
/// ```
public final class GGUFWriter {
    public let alignment: Int
    public let version: UInt32
    public private(set) var metadataKeys: [String] = []
    private var metadata: [String: GGUFMetadataValue] = [:]
    private var tensors: [PendingTensor] = []

    private enum Payload {
        case tensor(Tensor)
        case raw([UInt8])
    }

    private struct PendingTensor {
        let name: String
        let dimensions: [Int]
        let type: GGMLType
        let byteCount: Int
        let payload: Payload
    }

    /// `alignment` must be a power of two; a value other than 32 is recorded as
    /// `general.alignment` (as the first key, unless `setMetadata` placed it elsewhere, as
    /// gguf-py does after `general.architecture`). `version` may be 2 or 3 (same layout).
    public init(alignment: Int = 32, version: UInt32 = 3) {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "GGUF alignment must be a power of two")
        precondition(version == 2 || version == 3, "GGUFWriter writes versions 2 and 3")
        self.alignment = alignment
        self.version = version
    }

    /// Sets (or replaces, keeping its position) a metadata value. Arrays must hold elements of
    /// one type, since GGUF stores one element type per array. `general.alignment` may only
    /// be set to the writer's own alignment (it decides where the tensor data goes).
    public func setMetadata(_ key: String, _ value: GGUFMetadataValue) throws {
        try Self.checkHomogeneous(value, key: key)
        if key == "general.alignment", value.intValue != alignment {
            throw GGUFError.invalidWriterInput(key: key, reason: "the writer was made with alignment \(alignment); create it with GGUFWriter(alignment:) instead")
        }
        if metadata.updateValue(value, forKey: key) == nil { metadataKeys.append(key) }
    }

    /// Types `addTensor` encodes from Float32.
    public static let encodableTypes: [GGMLType] = [.f32, .f16, .q8_0, .q4_0]

    /// Adds a Float32 tensor, stored as F32, F16, Q8_0 or Q4_0 (the quantised types need rows of
    /// whole 32-weight blocks). GGUF dimensions are `tensor.shape` reversed.
    public func addTensor(_ name: String, _ tensor: Tensor, as type: GGMLType = .f32) throws {
        guard Self.encodableTypes.contains(type) else {
            throw GGUFError.invalidWriterInput(key: name, reason: "tensors can be written as F32, F16, Q8_0 or Q4_0, not \(type)")
        }
        let dims = tensor.shape.rank == 0 ? [1] : Array(tensor.shape.dims.reversed())
        guard dims[0] % type.blockSize == 0 else {
            throw GGUFError.invalidWriterInput(key: name, reason: "rows of \(dims[0]) values are not whole \(type) blocks of \(type.blockSize)")
        }
        try append(PendingTensor(name: name, dimensions: dims, type: type,
                                 byteCount: tensor.count / type.blockSize * type.bytesPerBlock, payload: .tensor(tensor)))
    }

    /// Adds already-encoded data of any ggml type; `dimensions` are in ggml `ne` order
    /// (innermost first). The byte count must match the type's block layout.
    public func addRawTensor(_ name: String, dimensions: [Int], type: GGMLType, data: [UInt8]) throws {
        guard (1...4).contains(dimensions.count), dimensions.allSatisfy({ $0 >= 0 }),
              dimensions[0] % type.blockSize == 0 else {
            throw GGUFError.invalidWriterInput(key: name, reason: "dimensions \(dimensions) do not fit type \(type)")
        }
        let expected = dimensions.reduce(1, *) / type.blockSize * type.bytesPerBlock
        guard data.count == expected else {
            throw GGUFError.invalidWriterInput(key: name, reason: "\(data.count) bytes given, \(type) \(dimensions) needs \(expected)")
        }
        try append(PendingTensor(name: name, dimensions: dimensions, type: type, byteCount: expected, payload: .raw(data)))
    }

    /// Writes the file atomically (temporary sibling, fsync, rename).
    public func write(to path: String) throws {
        let name = fileName(path)
        var header = ByteBuilder()
        header.append(UInt32(0x4655_4747))
        header.append(version)
        header.append(UInt64(tensors.count))
        var keys = metadataKeys, values = metadata
        if alignment != 32, values["general.alignment"] == nil {
            keys.insert("general.alignment", at: 0)
            values["general.alignment"] = .uint32(UInt32(alignment))
        }
        header.append(UInt64(keys.count))
        for key in keys {
            guard let value = values[key] else { continue }
            header.appendString(key)
            header.append(value.typeID)
            header.appendValue(value)
        }
        var offset = 0
        for tensor in tensors {
            header.appendString(tensor.name)
            header.append(UInt32(tensor.dimensions.count))
            for d in tensor.dimensions { header.append(UInt64(d)) }
            header.append(tensor.type.rawValue)
            header.append(UInt64(offset))
            offset += padding(tensor.byteCount) + tensor.byteCount
        }

        let output = try AtomicFileWriter(destination: path) { GGUFError.writeFailed(file: name, reason: $0) }
        do {
            try output.write(header.bytes)
            try output.writeZeros(padding(header.bytes.count))
            for tensor in tensors {
                switch tensor.payload {
                case let .raw(bytes): try output.write(bytes)
                case let .tensor(t): try Self.writeFloats(t, as: tensor.type, to: output)
                }
                try output.writeZeros(padding(tensor.byteCount))
            }
        } catch {
            output.abandon()
            throw error
        }
        try output.commit()
    }

    private func padding(_ count: Int) -> Int { (alignment - count % alignment) % alignment }

    private func append(_ tensor: PendingTensor) throws {
        guard !tensors.contains(where: { $0.name == tensor.name }) else {
            throw GGUFError.invalidWriterInput(key: tensor.name, reason: "a tensor of this name was already added")
        }
        tensors.append(tensor)
    }

    private static func writeFloats(_ tensor: Tensor, as type: GGMLType, to output: AtomicFileWriter) throws {
        let values = UnsafeBufferPointer(tensor.buffer)
        if type == .f32 {
            try output.write(UnsafeRawBufferPointer(values))
            return
        }
        if type == .q8_0 || type == .q4_0 {
            // Whole blocks in chunks, so a large tensor needs no second full-size buffer.
            let chunk = 1 << 16
            var encoded = [UInt8](repeating: 0, count: chunk / type.blockSize * type.bytesPerBlock)
            var start = 0
            while start < values.count {
                let n = min(chunk, values.count - start)
                let bytes = n / type.blockSize * type.bytesPerBlock
                let status = encoded.withUnsafeMutableBytes { tc_quantize_row(type.rawValue, values.baseAddress! + start, $0.baseAddress!, Int64(n)) }
                guard status == 0 else { throw GGUFError.invalidWriterInput(key: "\(type)", reason: "cannot encode \(n) values") }
                try encoded.withUnsafeBytes { try output.write(UnsafeRawBufferPointer(rebasing: $0[0..<bytes])) }
                start += n
            }
            return
        }
        // F16 in chunks, so a large tensor needs no second full-size buffer.
        let chunk = 1 << 16
        var halves = [UInt16](repeating: 0, count: chunk)
        var start = 0
        while start < values.count {
            let n = min(chunk, values.count - start)
            halves.withUnsafeMutableBufferPointer { h in
                tc_f32_to_f16_row(values.baseAddress! + start, h.baseAddress!, Int64(n))
            }
            try halves.withUnsafeBytes { try output.write(UnsafeRawBufferPointer(rebasing: $0[0..<(2 * n)])) }
            start += n
        }
    }

    private static func checkHomogeneous(_ value: GGUFMetadataValue, key: String) throws {
        guard case let .array(elements) = value, let first = elements.first else { return }
        for element in elements {
            guard element.typeID == first.typeID else {
                throw GGUFError.invalidWriterInput(key: key, reason: "array mixes \(GGUFMetadataValue.typeName(first.typeID)) and \(GGUFMetadataValue.typeName(element.typeID)) elements")
            }
            try checkHomogeneous(element, key: key)
        }
    }
}

/// Little-endian serialisation of GGUF header fields.
struct ByteBuilder {
    var bytes: [UInt8] = []

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func appendString(_ string: String) {
        let utf8 = Array(string.utf8)
        append(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    mutating func appendValue(_ value: GGUFMetadataValue) {
        switch value {
        case let .uint8(v): append(v)
        case let .int8(v): append(v)
        case let .uint16(v): append(v)
        case let .int16(v): append(v)
        case let .uint32(v): append(v)
        case let .int32(v): append(v)
        case let .uint64(v): append(v)
        case let .int64(v): append(v)
        case let .float32(v): append(v.bitPattern)
        case let .float64(v): append(v.bitPattern)
        case let .bool(v): append(UInt8(v ? 1 : 0))
        case let .string(s): appendString(s)
        case let .array(elements):
            // An empty array's element type is arbitrary; uint8 is the smallest.
            append(elements.first?.typeID ?? 0)
            append(UInt64(elements.count))
            for element in elements { appendValue(element) }
        }
    }
}
