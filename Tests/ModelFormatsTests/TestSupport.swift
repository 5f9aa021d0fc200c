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
