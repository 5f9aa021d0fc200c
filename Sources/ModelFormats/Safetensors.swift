import CKernels
import Foundation
import Tensors

/// Element types of the safetensors format. Only F32, F16 and BF16 load as Float32 tensors;
/// the others are recognised so that their sizes can be validated and errors can name them.
public enum SafetensorsDType: String, CaseIterable, Sendable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL
    case F8_E4M3, F8_E5M2

    public var bytesPerElement: Int {
        switch self {
        case .F64, .I64, .U64: return 8
        case .F32, .I32, .U32: return 4
        case .F16, .BF16, .I16, .U16: return 2
        case .I8, .U8, .BOOL, .F8_E4M3, .F8_E5M2: return 1
        }
    }

    /// Whether `SafetensorsFile.tensor(named:)` converts this type to Float32.
    public var isSupportedForLoading: Bool { self == .F32 || self == .F16 || self == .BF16 }
}

/// Why a safetensors file, shard index or tensor could not be read or written.
public enum SafetensorsError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(file: String, reason: String)
    /// The 8-byte header length is missing or larger than the file allows.
    case invalidHeaderLength(file: String, headerLength: UInt64, fileSize: Int)
    /// The header is not a JSON object of the expected form.
    case invalidHeader(file: String, reason: String)
    /// A tensor entry is malformed (missing field, bad shape, wrong byte count...).
    case invalidTensorEntry(file: String, tensor: String, reason: String)
    /// A tensor's data_offsets fall outside the data section.
    case tensorDataOutOfBounds(file: String, tensor: String, offsets: [UInt64], dataSize: Int)
    /// Two tensors' data overlap.
    case overlappingTensors(file: String, first: String, second: String)
    /// A dtype the format does not define.
    case unknownDType(file: String, tensor: String, dtype: String)
    /// A dtype that cannot be loaded as Float32.
    case unsupportedDType(file: String, tensor: String, dtype: SafetensorsDType)
    case tensorNotFound(file: String, tensor: String)
    /// model.safetensors.index.json is malformed or names an unsafe shard path.
    case invalidIndex(file: String, reason: String)
    case invalidWriterInput(key: String, reason: String)
    case writeFailed(file: String, reason: String)

    public var description: String {
        // Names and reasons may quote the header, which comes from the file.
        func b(_ text: String) -> String { ErrorText.bounded(text, limit: 300) }
        switch self {
        case let .cannotOpen(file, reason):
            return "\(file): cannot open safetensors file: \(b(reason))"
        case let .invalidHeaderLength(file, length, size):
            return "\(file): header length \(length) does not fit in the file (\(size) bytes); not a safetensors file or truncated"
        case let .invalidHeader(file, reason):
            return "\(file): invalid safetensors header: \(b(reason))"
        case let .invalidTensorEntry(file, tensor, reason):
            return "\(file): tensor '\(b(tensor))': \(b(reason))"
        case let .tensorDataOutOfBounds(file, tensor, offsets, dataSize):
            return "\(file): tensor '\(b(tensor))' data_offsets \(offsets) lie outside the data section (\(dataSize) bytes)"
        case let .overlappingTensors(file, first, second):
            return "\(file): data of tensors '\(b(first))' and '\(b(second))' overlap"
        case let .unknownDType(file, tensor, dtype):
            return "\(file): tensor '\(b(tensor))' has unknown dtype '\(b(dtype))'"
        case let .unsupportedDType(file, tensor, dtype):
            return "\(file): tensor '\(b(tensor))' has dtype \(dtype.rawValue), which cannot be loaded as Float32 (supported: F32, F16, BF16)"
        case let .tensorNotFound(file, tensor):
            return "\(file): no tensor named '\(b(tensor))'"
        case let .invalidIndex(file, reason):
            return "\(file): invalid safetensors index: \(b(reason))"
        case let .invalidWriterInput(key, reason):
            return "SafetensorsWriter: '\(b(key))': \(b(reason))"
        case let .writeFailed(file, reason):
            return "\(file): cannot write safetensors file: \(b(reason))"
        }
    }
}

/// One tensor entry of a safetensors header.
public struct SafetensorsTensorInfo: Equatable, Sendable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: Shape
    /// Byte range relative to the start of the data section (after the header).
    public let dataOffsets: Range<Int>
    public var byteCount: Int { dataOffsets.count }
}

/// A single .safetensors file, memory-mapped read-only; the JSON header is validated on open.
///
/// Usage:
/// ```
/// let file = try SafetensorsFile(path: "model.safetensors")
/// let w = try file.tensor(named: "model.layers.0.self_attn.q_proj.weight")  // Float32
/// ```
public final class SafetensorsFile: @unchecked Sendable {
    public let path: String
    /// The optional `__metadata__` string map.
    public let metadata: [String: String]
    /// Tensor entries ordered by data offset.
    public let tensors: [SafetensorsTensorInfo]
    /// Absolute file offset of the data section (8 + header length).
    public let dataOffset: Int

    private let file: MappedFile
    private let tensorIndex: [String: Int]

    /// Headers above this size are rejected before parsing (real ones are well under 10 MB).
    static let maximumHeaderLength = 100 << 20

    public init(path: String) throws {
        let name = fileName(path)
        self.path = path
        file = try MappedFile(path: path) { SafetensorsError.cannotOpen(file: name, reason: $0) }
        let size = file.bytes.count
        guard size >= 8 else { throw SafetensorsError.invalidHeaderLength(file: name, headerLength: 0, fileSize: size) }
        let headerLength = UInt64(littleEndian: file.bytes.loadUnaligned(as: UInt64.self))
        guard headerLength >= 2, headerLength <= UInt64(size - 8), headerLength <= UInt64(Self.maximumHeaderLength) else {
            throw SafetensorsError.invalidHeaderLength(file: name, headerLength: headerLength, fileSize: size)
        }
        dataOffset = 8 + Int(headerLength)
        let dataSize = size - dataOffset
        let headerBytes = Data(file.bytes[8..<dataOffset])

        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerBytes)
        } catch {
            throw SafetensorsError.invalidHeader(file: name, reason: "not valid JSON")
        }
        guard let entries = json as? [String: Any] else {
            throw SafetensorsError.invalidHeader(file: name, reason: "the header is not a JSON object")
        }

        var metadata: [String: String] = [:]
        var infos: [SafetensorsTensorInfo] = []
        for (key, value) in entries {
            if key == "__metadata__" {
                guard let map = value as? [String: Any] else {
                    throw SafetensorsError.invalidHeader(file: name, reason: "__metadata__ is not an object")
                }
                for (k, v) in map {
                    guard let s = v as? String else {
                        throw SafetensorsError.invalidHeader(file: name, reason: "__metadata__ value for '\(k)' is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            infos.append(try Self.parseEntry(key, value, dataSize: dataSize, file: name))
        }
        infos.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound) }
        for (previous, next) in zip(infos, infos.dropFirst())
        where previous.dataOffsets.upperBound > next.dataOffsets.lowerBound && !next.dataOffsets.isEmpty {
            throw SafetensorsError.overlappingTensors(file: name, first: previous.name, second: next.name)
        }
        self.metadata = metadata
        tensors = infos
        tensorIndex = Dictionary(uniqueKeysWithValues: infos.enumerated().map { ($1.name, $0) })
    }

    public var tensorNames: [String] { tensors.map(\.name) }

    public func tensorInfo(named name: String) -> SafetensorsTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The stored bytes of a tensor of this file, valid while this `SafetensorsFile` lives.
    public func rawBytes(of info: SafetensorsTensorInfo) -> UnsafeRawBufferPointer {
        let start = dataOffset + info.dataOffsets.lowerBound
        precondition(tensorInfo(named: info.name) == info, "SafetensorsFile.rawBytes: \(info.name) is not a tensor of \(path)")
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + info.byteCount)])
    }

    /// The tensor called `name` converted to Float32.
    public func tensor(named name: String) throws -> Tensor {
        guard let info = tensorInfo(named: name) else {
            throw SafetensorsError.tensorNotFound(file: fileName(path), tensor: name)
        }
        let typeID: UInt32
        switch info.dtype {
        case .F32: typeID = UInt32(TC_GGML_F32)
        case .F16: typeID = UInt32(TC_GGML_F16)
        case .BF16: typeID = UInt32(TC_GGML_BF16)
        default: throw SafetensorsError.unsupportedDType(file: fileName(path), tensor: name, dtype: info.dtype)
        }
        let result = Tensor(uninitialized: info.shape)
        if let source = rawBytes(of: info).baseAddress, info.shape.count > 0 {
            tc_dequantize_row(typeID, source, result.pointer, Int64(info.shape.count))
        }
        return result
    }

    private static func parseEntry(_ name: String, _ value: Any, dataSize: Int, file: String) throws -> SafetensorsTensorInfo {
        func invalid(_ reason: String) -> SafetensorsError { .invalidTensorEntry(file: file, tensor: name, reason: reason) }
        guard let entry = value as? [String: Any] else { throw invalid("entry is not an object") }
        guard let dtypeName = entry["dtype"] as? String else { throw invalid("missing string field 'dtype'") }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw SafetensorsError.unknownDType(file: file, tensor: name, dtype: dtypeName)
        }
        guard let rawShape = entry["shape"] as? [Any] else { throw invalid("missing array field 'shape'") }
        var dims: [Int] = []
        var count = 1
        for d in rawShape {
            guard let n = Self.exactInteger(d), n >= 0 else { throw invalid("shape \(rawShape) has a non-integer or negative dimension") }
            let (product, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow else { throw invalid("shape \(dims + [n]) has too many elements") }
            dims.append(n)
            count = product
        }
        guard let rawOffsets = entry["data_offsets"] as? [Any], rawOffsets.count == 2,
              let begin = Self.exactInteger(rawOffsets[0]), let end = Self.exactInteger(rawOffsets[1]) else {
            throw invalid("'data_offsets' must be two integers")
        }
        guard begin >= 0, begin <= end, end <= dataSize else {
            throw SafetensorsError.tensorDataOutOfBounds(file: file, tensor: name, offsets: [UInt64(clamping: begin), UInt64(clamping: end)], dataSize: dataSize)
        }
        let (expected, overflow) = count.multipliedReportingOverflow(by: dtype.bytesPerElement)
        guard !overflow, expected == end - begin else {
            throw invalid("\(dtype.rawValue) shape \(dims) needs \(overflow ? "too many" : String(expected)) bytes but data_offsets span \(end - begin)")
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: Shape(dims), dataOffsets: begin..<end)
    }

    /// An integral JSON number as Int; rejects fractions, booleans and out-of-range values.
    static func exactInteger(_ value: Any) -> Int? {
        if value is Bool, !(value is Int) { return nil }
        if let i = value as? Int { return i }
        guard let d = value as? Double, d.rounded() == d else { return nil }
        return Int(exactly: d)
    }
}
