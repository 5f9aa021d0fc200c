import CKernels
import Tensors

/// Where one tensor lives in a GGUF file and how it is stored. Only `GGUFFile` creates these,
/// after checking that the data lies inside the file.
public struct GGUFTensorInfo: Equatable, Sendable {
    public let name: String
    /// ggml `ne` order: innermost (contiguous) dimension first.
    public let dimensions: [Int]
    public let type: GGMLType
    /// Byte offset of the data, relative to the start of the data section.
    public let offset: Int
    /// Number of weights (product of `dimensions`).
    public let elementCount: Int
    /// Bytes of stored data.
    public let byteCount: Int

    /// Row-major shape, outermost first: `dimensions` reversed. A [ne0=576, ne1=1536] weight
    /// becomes Shape [1536, 576], the torch.nn.Linear [out, in] layout.
    public var shape: Shape { Shape(dimensions.reversed()) }
    /// Rows of the 2-D [elementCount / ne0, ne0] view that `dequantizeRows` addresses.
    public var rowCount: Int { dimensions[0] == 0 ? 0 : elementCount / dimensions[0] }
    /// Bytes of one row of `ne0` weights.
    public var bytesPerRow: Int { dimensions[0] / type.blockSize * type.bytesPerBlock }
}

/// A GGUF file (versions 2 and 3), memory-mapped read-only. Opening parses and validates the
/// header, metadata and tensor infos; tensor data is read from the mapping on demand.
///
/// Usage:
/// ```
/// let file = try GGUFFile(path: "checkpoints/base/model.gguf")
/// let layers = file.metadata["llama.block_count"]?.intValue
/// let wq = try file.dequantize(named: "blk.0.attn_q.weight")   // Tensor [out, in]
/// ```
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let alignment: Int
    public let metadata: [String: GGUFMetadataValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// Absolute file offset of the data section.
    public let dataOffset: Int

    private let file: MappedFile

    /// Drops the file pages read so far (while loading and fingerprinting) from the resident
    /// set; later reads fault them back in from the page cache.
    public func releaseResidentPages() { file.releaseResidentPages() }
    private let tensorIndex: [String: Int]

    /// Deepest array nesting accepted; real files use one level, and the bound keeps a hostile
    /// file from exhausting the stack.
    static let maximumArrayNesting = 8

    public init(path: String) throws {
        let name = fileName(path)
        self.path = path
        file = try MappedFile(path: path) { GGUFError.cannotOpen(file: name, reason: $0) }
        let size = file.bytes.count
        var cursor = ByteCursor(bytes: file.bytes, offset: 0) { field, offset, needed in
            GGUFError.truncated(file: name, field: field, offset: offset, needed: needed, fileSize: size)
        }

        let magic = try cursor.read(UInt32.self, field: "magic")
        guard magic == 0x4655_4747 else { throw GGUFError.notGGUF(file: name, magic: magic) }
        version = try cursor.read(UInt32.self, field: "version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(file: name, version: version) }
        let tensorCount = try cursor.read(UInt64.self, field: "tensor count")
        let keyCount = try cursor.read(UInt64.self, field: "metadata key count")
        // Smallest possible key/value: empty key (8) + type (4) + one-byte value.
        try Self.checkCount(keyCount, minimumSize: 13, cursor: cursor, field: "metadata key count", file: name)

        var metadata: [String: GGUFMetadataValue] = [:]
        var keys: [String] = []
        keys.reserveCapacity(Int(keyCount))
        for k in 0..<Int(keyCount) {
            let key = try Self.readString(&cursor, field: "metadata key #\(k) name", file: name)
            let label = "metadata key #\(k) ('\(key)')"
            let typeID = try cursor.read(UInt32.self, field: "\(label) type")
            let value = try Self.readValue(&cursor, typeID: typeID, field: "\(label) value", depth: 0, file: name)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw GGUFError.duplicateMetadataKey(file: name, key: key)
            }
            keys.append(key)
        }
        self.metadata = metadata
        metadataKeys = keys

        if let value = metadata["general.alignment"] {
            guard let a = value.intValue, a > 0, a <= 1 << 30, a & (a - 1) == 0 else {
                throw GGUFError.invalidAlignment(file: name, value: "\(value)")
            }
            alignment = a
        } else {
            alignment = 32
        }

        // Smallest tensor info: empty name (8) + n_dims (4) + one dimension (8) + type (4) + offset (8).
        try Self.checkCount(tensorCount, minimumSize: 32, cursor: cursor, field: "tensor count", file: name)
        var infos: [GGUFTensorInfo] = []
        var rawOffsets: [UInt64] = []
        var index: [String: Int] = [:]
        for t in 0..<Int(tensorCount) {
            let tensorName = try Self.readString(&cursor, field: "tensor info #\(t) name", file: name)
            let label = "tensor info #\(t) ('\(tensorName)')"
            let rank = try cursor.read(UInt32.self, field: "\(label) dimension count")
            guard (1...4).contains(rank) else {
                throw GGUFError.invalidDimensions(file: name, tensor: tensorName, dimensions: [],
                                                  reason: "dimension count \(rank) is not in 1...4")
            }
            var rawDims: [UInt64] = []
            for d in 0..<Int(rank) { rawDims.append(try cursor.read(UInt64.self, field: "\(label) dimension \(d)")) }
            let typeID = try cursor.read(UInt32.self, field: "\(label) type")
            let offset = try cursor.read(UInt64.self, field: "\(label) data offset")
            guard let type = GGMLType(rawValue: typeID) else {
                throw GGUFError.unknownTensorType(file: name, tensor: tensorName, typeID: typeID)
            }
            let (dims, elements, bytes) = try Self.checkDimensions(rawDims, type: type, tensor: tensorName, file: name)
            guard index.updateValue(t, forKey: tensorName) == nil else {
                throw GGUFError.duplicateTensorName(file: name, tensor: tensorName)
            }
            rawOffsets.append(offset)
            infos.append(GGUFTensorInfo(name: tensorName, dimensions: dims, type: type,
                                        offset: Int(clamping: offset), elementCount: elements, byteCount: bytes))
        }

        // The data section starts at the next multiple of the alignment.
        let (padded, overflow) = cursor.offset.addingReportingOverflow(alignment - 1)
        dataOffset = overflow ? Int.max : padded / alignment * alignment
        // Tensor data is laid out in declaration order, each padded to the alignment, as
        // llama.cpp writes and requires. A changed type byte changes a tensor's size and so moves
        // where the next one should start: caught here instead of loading garbage.
        var expectedOffset: UInt64 = 0
        for (info, rawOffset) in zip(infos, rawOffsets) {
            guard rawOffset % UInt64(alignment) == 0 else {
                throw GGUFError.misalignedTensorOffset(file: name, tensor: info.name, offset: rawOffset, alignment: alignment)
            }
            let start = UInt64(dataOffset).addingReportingOverflow(rawOffset)
            let end = start.partialValue.addingReportingOverflow(UInt64(info.byteCount))
            guard !start.overflow, !end.overflow, end.partialValue <= UInt64(size) else {
                throw GGUFError.tensorDataOutOfBounds(file: name, tensor: info.name, start: start.partialValue,
                                                      byteCount: info.byteCount, fileSize: size)
            }
            guard rawOffset == expectedOffset else {
                throw GGUFError.unexpectedTensorOffset(file: name, tensor: info.name, offset: rawOffset, expected: expectedOffset)
            }
            let padded = (UInt64(info.byteCount) + UInt64(alignment) - 1) / UInt64(alignment) * UInt64(alignment)
            expectedOffset = expectedOffset.addingReportingOverflow(padded).partialValue
        }
        tensors = infos
        tensorIndex = index
    }

    /// The info of the tensor called `name`, or nil.
    public func tensorInfo(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The stored bytes of a tensor of this file, valid while this `GGUFFile` lives.
    public func rawBytes(of info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let start = dataOffset + info.offset
        precondition(info.byteCount >= 0 && start <= file.bytes.count - info.byteCount,
                     "GGUFFile.rawBytes: \(info.name) is not a tensor of \(path)")
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + info.byteCount)])
    }

    /// The tensor as Float32 with shape `info.shape`.
    public func dequantize(_ info: GGUFTensorInfo) throws -> Tensor {
        let result = Tensor(uninitialized: info.shape)
        try dequantizeRows(info, rows: 0..<info.rowCount, into: result.pointer)
        return result
    }

    /// The tensor called `name` as Float32, or `GGUFError.tensorNotFound`.
    public func dequantize(named name: String) throws -> Tensor {
        guard let info = tensorInfo(named: name) else {
            throw GGUFError.tensorNotFound(file: fileName(path), tensor: name)
        }
        return try dequantize(info)
    }

    /// Writes rows `rows` of the tensor's 2-D [rowCount, ne0] view to `into`
    /// (`rows.count * ne0` floats). Large ranges are split across the thread pool.
    ///
    /// Usage: `try file.dequantizeRows(embd, rows: id..<(id + 1), into: buffer)` (one embedding)
    public func dequantizeRows(_ info: GGUFTensorInfo, rows: Range<Int>, into destination: UnsafeMutablePointer<Float>) throws {
        let name = fileName(path)
        guard tensorInfo(named: info.name) == info else { throw GGUFError.tensorNotFound(file: name, tensor: info.name) }
        guard info.type.isSupportedForDequantization else {
            throw GGUFError.unsupportedTensorType(file: name, tensor: info.name, type: info.type)
        }
        guard rows.lowerBound >= 0, rows.upperBound <= info.rowCount else {
            throw GGUFError.rowRangeOutOfBounds(file: name, tensor: info.name, rows: rows, rowCount: info.rowCount)
        }
        if rows.isEmpty { return }
        let rowLength = info.dimensions[0]
        let rowBytes = info.bytesPerRow
        guard let source = rawBytes(of: info).baseAddress else { return }
        let first = rows.lowerBound
        let typeID = info.type.rawValue
        // About 64K weights per task keeps the split worthwhile.
        ThreadPool.shared.parallelFor(rows.count, minChunk: max(1, 65536 / max(rowLength, 1))) { chunk in
            for r in chunk {
                let status = tc_dequantize_row(typeID, source + (first + r) * rowBytes,
                                               destination + r * rowLength, Int64(rowLength))
                // Type support and whole blocks per row were checked above and at open.
                precondition(status == 0, "tc_dequantize_row failed with \(status)")
            }
        }
    }

    // MARK: - Parsing

    private static func checkCount(_ count: UInt64, minimumSize: Int, cursor: ByteCursor, field: String, file: String) throws {
        guard count <= UInt64(cursor.remaining / minimumSize) else {
            throw GGUFError.implausibleCount(file: file, field: field, count: count, remainingBytes: cursor.remaining)
        }
    }

    private static func readString(_ cursor: inout ByteCursor, field: @autoclosure () -> String, file: String) throws -> String {
        let length = try cursor.read(UInt64.self, field: field() + " length")
        guard length <= UInt64(cursor.remaining) else {
            throw GGUFError.implausibleCount(file: file, field: field() + " length", count: length, remainingBytes: cursor.remaining)
        }
        let bytes = try cursor.readBytes(Int(length), field: field())
        // Lenient decoding: a malformed sequence becomes U+FFFD rather than failing the file.
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func readValue(_ cursor: inout ByteCursor, typeID: UInt32, field: @autoclosure () -> String,
                                  depth: Int, file: String) throws -> GGUFMetadataValue {
        switch typeID {
        case 0: return .uint8(try cursor.read(UInt8.self, field: field()))
        case 1: return .int8(try cursor.read(Int8.self, field: field()))
        case 2: return .uint16(try cursor.read(UInt16.self, field: field()))
        case 3: return .int16(try cursor.read(Int16.self, field: field()))
        case 4: return .uint32(try cursor.read(UInt32.self, field: field()))
        case 5: return .int32(try cursor.read(Int32.self, field: field()))
        case 6: return .float32(Float(bitPattern: try cursor.read(UInt32.self, field: field())))
        case 7: return .bool(try cursor.read(UInt8.self, field: field()) != 0)
        case 8: return .string(try readString(&cursor, field: field(), file: file))
        case 9:
            guard depth < maximumArrayNesting else { throw GGUFError.nestingTooDeep(file: file, field: field()) }
            let elementType = try cursor.read(UInt32.self, field: field() + " element type")
            guard let minimumSize = GGUFMetadataValue.minimumEncodedSize(elementType) else {
                throw GGUFError.unknownValueType(file: file, field: field() + " element type", typeID: elementType)
            }
            let count = try cursor.read(UInt64.self, field: field() + " element count")
            guard count <= UInt64(cursor.remaining / minimumSize) else {
                throw GGUFError.implausibleCount(file: file, field: field() + " element count", count: count,
                                                 remainingBytes: cursor.remaining)
            }
            var elements: [GGUFMetadataValue] = []
            elements.reserveCapacity(Int(count))
            for i in 0..<Int(count) {
                elements.append(try readValue(&cursor, typeID: elementType, field: field() + " element \(i)",
                                              depth: depth + 1, file: file))
            }
            return .array(elements)
        case 10: return .uint64(try cursor.read(UInt64.self, field: field()))
        case 11: return .int64(try cursor.read(Int64.self, field: field()))
        case 12: return .float64(Double(bitPattern: try cursor.read(UInt64.self, field: field())))
        default: throw GGUFError.unknownValueType(file: file, field: field(), typeID: typeID)
        }
    }

    /// Validates `ne` and returns it as Ints with the element and byte counts.
    private static func checkDimensions(_ raw: [UInt64], type: GGMLType, tensor: String, file: String) throws
        -> (dims: [Int], elements: Int, bytes: Int) {
        func invalid(_ reason: String) -> GGUFError {
            .invalidDimensions(file: file, tensor: tensor, dimensions: raw, reason: reason)
        }
        var dims: [Int] = []
        var elements = 1
        for d in raw {
            guard let value = Int(exactly: d) else { throw invalid("dimension \(d) exceeds Int.max") }
            let (product, overflow) = elements.multipliedReportingOverflow(by: value)
            guard !overflow else { throw invalid("the element count overflows") }
            elements = product
            dims.append(value)
        }
        guard dims[0] % type.blockSize == 0 else {
            throw invalid("ne0 = \(dims[0]) is not a multiple of the \(type) block size \(type.blockSize)")
        }
        let (bytes, overflow) = (elements / type.blockSize).multipliedReportingOverflow(by: type.bytesPerBlock)
        guard !overflow else { throw invalid("the byte count overflows") }
        return (dims, elements, bytes)
    }
}
