/// Why a GGUF file could not be read or written. Every case names the file (by its last path
/// component) and the field or tensor concerned, so a message alone tells what is wrong where.
///
/// Usage: `do { _ = try GGUFFile(path: p) } catch let error as GGUFError { print(error) }`
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or mapped.
    case cannotOpen(file: String, reason: String)
    /// The first four bytes are not "GGUF".
    case notGGUF(file: String, magic: UInt32)
    /// A version this reader does not handle (it reads 2 and 3, little-endian).
    case unsupportedVersion(file: String, version: UInt32)
    /// The file ends before `field` is complete.
    case truncated(file: String, field: String, offset: Int, needed: Int, fileSize: Int)
    /// A count or length that cannot fit in the bytes that remain.
    case implausibleCount(file: String, field: String, count: UInt64, remainingBytes: Int)
    /// A metadata value type id that GGUF does not define.
    case unknownValueType(file: String, field: String, typeID: UInt32)
    /// Arrays nested deeper than the reader allows.
    case nestingTooDeep(file: String, field: String)
    /// A metadata key that occurs twice.
    case duplicateMetadataKey(file: String, key: String)
    /// `general.alignment` is not a positive power of two stored as an integer.
    case invalidAlignment(file: String, value: String)
    /// A ggml type id that ggml does not (or no longer) define.
    case unknownTensorType(file: String, tensor: String, typeID: UInt32)
    /// Dimensions that are missing, too many, overflow, or do not fill whole blocks.
    case invalidDimensions(file: String, tensor: String, dimensions: [UInt64], reason: String)
    /// Two tensors with the same name.
    case duplicateTensorName(file: String, tensor: String)
    /// A tensor data offset that is not a multiple of the file's alignment.
    case misalignedTensorOffset(file: String, tensor: String, offset: UInt64, alignment: Int)
    /// A tensor whose data does not start where the tensors before it end (each padded to the
    /// alignment), as llama.cpp's reader also requires: its type or shape was changed, or the
    /// file is damaged.
    case unexpectedTensorOffset(file: String, tensor: String, offset: UInt64, expected: UInt64)
    /// Tensor data that lies (partly) outside the file.
    case tensorDataOutOfBounds(file: String, tensor: String, start: UInt64, byteCount: Int, fileSize: Int)
    /// No tensor of that name.
    case tensorNotFound(file: String, tensor: String)
    /// A tensor type with no dequantisation kernel.
    case unsupportedTensorType(file: String, tensor: String, type: GGMLType)
    /// A row range outside the tensor's 2-D [rows, ne0] view.
    case rowRangeOutOfBounds(file: String, tensor: String, rows: Range<Int>, rowCount: Int)
    /// Writer: a value or tensor the writer cannot encode.
    case invalidWriterInput(key: String, reason: String)
    /// Writer: the file system refused.
    case writeFailed(file: String, reason: String)

    public var description: String {
        // Keys, tensor names and values come from the file and may hold anything.
        func b(_ text: String) -> String { ErrorText.bounded(text, limit: 200) }
        switch self {
        case let .cannotOpen(file, reason):
            return "\(file): cannot open GGUF file: \(reason)"
        case let .notGGUF(file, magic):
            return "\(file): not a GGUF file (magic 0x\(String(magic, radix: 16)), expected \"GGUF\")"
        case let .unsupportedVersion(file, version):
            let hint = version > 0xffff ? " (a big-endian file?)" : ""
            return "\(file): unsupported GGUF version \(version)\(hint); versions 2 and 3 are supported"
        case let .truncated(file, field, offset, needed, fileSize):
            return "\(file): truncated while reading \(b(field)) (needs \(needed) bytes at offset \(offset), file has \(fileSize))"
        case let .implausibleCount(file, field, count, remaining):
            return "\(file): \(b(field)) is \(count), which cannot fit in the \(remaining) bytes that remain"
        case let .unknownValueType(file, field, typeID):
            return "\(file): \(b(field)) has unknown value type id \(typeID) (GGUF defines 0-12)"
        case let .nestingTooDeep(file, field):
            return "\(file): \(b(field)) nests arrays too deeply"
        case let .duplicateMetadataKey(file, key):
            return "\(file): metadata key '\(b(key))' occurs more than once"
        case let .invalidAlignment(file, value):
            return "\(file): general.alignment is \(b(value)); it must be a positive power of two"
        case let .unknownTensorType(file, tensor, typeID):
            return "\(file): tensor '\(b(tensor))' has unknown ggml type id \(typeID)"
        case let .invalidDimensions(file, tensor, dimensions, reason):
            return "\(file): tensor '\(b(tensor))' has invalid dimensions \(dimensions): \(reason)"
        case let .duplicateTensorName(file, tensor):
            return "\(file): tensor name '\(b(tensor))' occurs more than once"
        case let .misalignedTensorOffset(file, tensor, offset, alignment):
            return "\(file): tensor '\(b(tensor))' data offset \(offset) is not a multiple of the alignment \(alignment)"
        case let .unexpectedTensorOffset(file, tensor, offset, expected):
            return "\(file): tensor '\(b(tensor))' starts at data offset \(offset), but the tensors before it end at \(expected); a tensor's type or shape does not match its data, or the file is damaged"
        case let .tensorDataOutOfBounds(file, tensor, start, byteCount, fileSize):
            return "\(file): tensor '\(b(tensor))' data (\(byteCount) bytes at file offset \(start)) extends beyond the end of the file (\(fileSize) bytes)"
        case let .tensorNotFound(file, tensor):
            return "\(file): no tensor named '\(b(tensor))'"
        case let .unsupportedTensorType(file, tensor, type):
            return "\(file): tensor '\(b(tensor))' has type \(type), which cannot be dequantized (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)"
        case let .rowRangeOutOfBounds(file, tensor, rows, rowCount):
            return "\(file): rows \(rows) of tensor '\(b(tensor))' are outside 0..<\(rowCount)"
        case let .invalidWriterInput(key, reason):
            return "GGUFWriter: '\(b(key))': \(reason)"
        case let .writeFailed(file, reason):
            return "\(file): cannot write GGUF file: \(reason)"
        }
    }
}

func fileName(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
