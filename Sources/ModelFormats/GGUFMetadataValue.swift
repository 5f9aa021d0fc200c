/// One value of a GGUF metadata key/value pair. Arrays hold values of a single element type
/// (GGUF stores one type per array), possibly arrays themselves.
///
/// Usage: `file.metadata["llama.block_count"]?.intValue`
public enum GGUFMetadataValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool)
    case string(String)
    case array([GGUFMetadataValue])

    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    /// Any integer type, when the value fits in `Int` (a UInt64 above Int.max gives nil).
    public var intValue: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(v)
        default: return nil
        }
    }

    /// Any number, integer or floating point.
    public var doubleValue: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        case let .uint64(v): return Double(v)
        default: return intValue.map(Double.init)
        }
    }

    public var boolValue: Bool? {
        if case let .bool(b) = self { return b }
        return nil
    }

    public var arrayValue: [GGUFMetadataValue]? {
        if case let .array(a) = self { return a }
        return nil
    }

    /// The array's elements when every one is a string.
    public var stringArray: [String]? { mapArray(\.stringValue) }
    /// The array's elements when every one is an integer that fits in `Int`.
    public var intArray: [Int]? { mapArray(\.intValue) }
    /// The array's elements when every one is a number.
    public var doubleArray: [Double]? { mapArray(\.doubleValue) }

    private func mapArray<T>(_ transform: (GGUFMetadataValue) -> T?) -> [T]? {
        guard case let .array(elements) = self else { return nil }
        var result: [T] = []
        result.reserveCapacity(elements.count)
        for element in elements {
            guard let value = transform(element) else { return nil }
            result.append(value)
        }
        return result
    }

    /// The GGUF value type id (gguf.h `gguf_type`).
    var typeID: UInt32 {
        switch self {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }

    /// Name of a GGUF value type id, for messages.
    static func typeName(_ id: UInt32) -> String {
        let names = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool",
                     "string", "array", "uint64", "int64", "float64"]
        return id < names.count ? names[Int(id)] : "unknown type \(id)"
    }

    /// Smallest encoded size of a value of type `id`: the bound used to reject array counts
    /// that cannot fit in the bytes left. nil for unknown ids.
    static func minimumEncodedSize(_ id: UInt32) -> Int? {
        switch id {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 10, 11, 12: return 8
        case 8: return 8       // length prefix of an empty string
        case 9: return 4 + 8   // element type and count of an empty array
        default: return nil
        }
    }
}
