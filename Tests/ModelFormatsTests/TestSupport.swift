import Foundation
import XCTest
@testable import ModelFormats

/// A fresh temporary directory per test, removed afterwards.
class TemporaryDirectoryTestCase: XCTestCase {
    var directory: String = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "ModelFormatsTests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func path(_ name: String) -> String { directory + "/" + name }

    @discardableResult
    func writeFile(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }
}

enum Fixtures {
    static func url(_ name: String) throws -> URL {
        guard let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw XCTSkip("Fixtures folder not bundled")
        }
        return folder.appendingPathComponent(name)
    }

    static func path(_ name: String) throws -> String { try url(name).path }

    /// The gguf-py fixture file (one small tensor of every supported type, metadata of every
    /// type), rebuilt once per process from `quant_fixtures.json` with `GGUFWriter`. The JSON
    /// records the size and CRC-32 of the bytes gguf-py wrote; the rebuilt file must match
    /// both, so the reader tests still read exactly what an independent writer produced.
    static func quantGGUFPath() throws -> String {
        if let built = quantGGUF { return built }
        let description = try Data(contentsOf: url("quant_fixtures.json"))
        guard let root = try JSONSerialization.jsonObject(with: description) as? [String: Any],
              let alignment = root["alignment"] as? Int, let size = root["size"] as? Int,
              let crc = (root["crc32"] as? NSNumber)?.uint32Value,
              let metadata = root["metadata"] as? [[String: Any]], let tensors = root["tensors"] as? [[String: Any]] else {
            throw FixtureError.malformed("quant_fixtures.json: missing alignment, size, crc32, metadata or tensors")
        }
        let writer = GGUFWriter(alignment: alignment)
        for entry in metadata {
            guard let key = entry["key"] as? String, let type = entry["type"] as? Int, let value = entry["value"] else {
                throw FixtureError.malformed("quant_fixtures.json: metadata entry \(entry)")
            }
            try writer.setMetadata(key, metadataValue(type: type, elementType: entry["element_type"] as? Int, value, key: key))
        }
        for entry in tensors {
            guard let name = entry["name"] as? String, let rawType = (entry["ggml_type"] as? NSNumber)?.uint32Value,
                  let type = GGMLType(rawValue: rawType), let ne = entry["ne"] as? [Int], let hex = entry["hex"] as? String else {
                throw FixtureError.malformed("quant_fixtures.json: tensor entry \(entry["name"] ?? "?")")
            }
            try writer.addRawTensor(name, dimensions: ne, type: type, data: try bytes(hex: hex))
        }
        // One file per fixture version (named by gguf-py's CRC), rewritten atomically by each
        // process, so test runs do not leave a new file behind each time.
        let path = NSTemporaryDirectory() + "tc-quant-fixtures-\(String(crc, radix: 16)).gguf"
        try writer.write(to: path)
        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        guard written.count == size, crc32(written) == crc else {
            try? FileManager.default.removeItem(atPath: path)
            throw FixtureError.malformed("GGUFWriter rebuilt quant_fixtures.gguf as \(written.count) bytes, CRC-32 \(crc32(written)); gguf-py wrote \(size) bytes, CRC-32 \(crc)")
        }
        quantGGUF = path
        return path
    }

    nonisolated(unsafe) private static var quantGGUF: String?

    enum FixtureError: Error { case malformed(String) }

    private static func metadataValue(type: Int, elementType: Int?, _ value: Any, key: String) throws -> GGUFMetadataValue {
        if type == 9 {
            guard let elementType, let elements = value as? [Any] else { throw FixtureError.malformed("\(key): array without element_type") }
            return .array(try elements.map { try metadataValue(type: elementType, elementType: nil, $0, key: key) })
        }
        if type == 8 {
            guard let string = value as? String else { throw FixtureError.malformed("\(key): not a string") }
            return .string(string)
        }
        if type == 7 {
            guard let flag = value as? Bool else { throw FixtureError.malformed("\(key): not a bool") }
            return .bool(flag)
        }
        guard let number = value as? NSNumber else { throw FixtureError.malformed("\(key): not a number") }
        switch type {
        case 0: return .uint8(number.uint8Value)
        case 1: return .int8(number.int8Value)
        case 2: return .uint16(number.uint16Value)
        case 3: return .int16(number.int16Value)
        case 4: return .uint32(number.uint32Value)
        case 5: return .int32(number.int32Value)
        case 6: return .float32(number.floatValue)
        case 10: return .uint64(number.uint64Value)
        case 11: return .int64(number.int64Value)
        case 12: return .float64(number.doubleValue)
        default: throw FixtureError.malformed("\(key): unknown GGUF type \(type)")
        }
    }

    private static func bytes(hex: String) throws -> [UInt8] {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { throw FixtureError.malformed("odd-length hex") }
        return try stride(from: 0, to: digits.count, by: 2).map { i in
            guard let byte = UInt8(String(decoding: digits[i..<i + 2], as: UTF8.self), radix: 16) else {
                throw FixtureError.malformed("bad hex at \(i)")
            }
            return byte
        }
    }

    /// CRC-32 (IEEE 802.3, reflected, as zlib.crc32).
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }

    /// The base model, found relative to the package root; skips when it has not been fetched.
    static func baseModelPath() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let model = root.appendingPathComponent("checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: model) else {
            throw XCTSkip("run scripts/fetch-model.sh to fetch the base model")
        }
        return model
    }
}

/// Hand-assembles GGUF bytes, including ones a well-behaved writer would never produce.
struct RawGGUF {
    var version: UInt32 = 3
    var magic: UInt32 = 0x4655_4747
    var keyCount: UInt64?
    var tensorCount: UInt64?
    var keyValues: [(key: String, type: UInt32, payload: [UInt8])] = []
    var tensors: [(name: String, dims: [UInt64], type: UInt32, offset: UInt64)] = []
    var alignment = 32
    var data: [UInt8] = []

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func string(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

    var bytes: [UInt8] {
        var out = Self.le(magic) + Self.le(version)
        out += Self.le(tensorCount ?? UInt64(tensors.count)) + Self.le(keyCount ?? UInt64(keyValues.count))
        for kv in keyValues { out += Self.string(kv.key) + Self.le(kv.type) + kv.payload }
        for t in tensors {
            out += Self.string(t.name) + Self.le(UInt32(t.dims.count))
            for d in t.dims { out += Self.le(d) }
            out += Self.le(t.type) + Self.le(t.offset)
        }
        while out.count % alignment != 0 { out.append(0) }
        return out + data
    }

    /// A valid file: a string key, an int32 array key, and one F32 tensor of 8 values.
    static var valid: RawGGUF {
        var file = RawGGUF()
        file.keyValues = [
            ("general.architecture", 8, string("llama")),
            ("tokenizer.ggml.token_type", 9, le(UInt32(5)) + le(UInt64(3)) + le(Int32(1)) + le(Int32(2)) + le(Int32(3))),
        ]
        file.tensors = [("w", [8], 0, 0)]
        file.data = (0..<8).flatMap { le(Float(Float($0) * 0.5).bitPattern) }
        return file
    }
}

func XCTAssertThrowsGGUFError(_ expression: @autoclosure () throws -> Any, _ message: String = "",
                              file: StaticString = #filePath, line: UInt = #line,
                              _ check: (GGUFError) -> Void = { _ in }) {
    do {
        _ = try expression()
        XCTFail("expected a GGUFError. \(message)", file: file, line: line)
    } catch let error as GGUFError {
        check(error)
    } catch {
        XCTFail("expected a GGUFError, got \(error). \(message)", file: file, line: line)
    }
}
