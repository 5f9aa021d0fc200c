import Foundation
import XCTest
@testable import ModelFormats

/// Malformed and hostile GGUF files must fail with a GGUFError naming the field, never crash
/// or read out of bounds.
final class GGUFHostileFileTests: TemporaryDirectoryTestCase {
    private func open(_ raw: RawGGUF) throws -> GGUFFile {
        try GGUFFile(path: try writeFile("hostile.gguf", raw.bytes))
    }

    func testTheValidBaselineOpens() throws {
        let file = try open(.valid)
        XCTAssertEqual(file.metadata["tokenizer.ggml.token_type"]?.intArray, [1, 2, 3])
    }

    func testEveryTruncationOfAValidFileThrows() throws {
        let bytes = RawGGUF.valid.bytes
        for length in 0..<bytes.count {
            let p = try writeFile("truncated.gguf", Array(bytes.prefix(length)))
            XCTAssertThrowsGGUFError(try GGUFFile(path: p), "length \(length)")
        }
    }

    func testEveryTruncationOfTheFixtureBeforeItsLastTensorEndsThrows() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.quantGGUFPath())))
        let full = try GGUFFile(path: try Fixtures.quantGGUFPath())
        let last = try XCTUnwrap(full.tensors.last)
        // Only the trailing padding after the last tensor may be cut.
        let end = full.dataOffset + last.offset + last.byteCount
        for length in stride(from: 0, to: end, by: 7) {
            let p = try writeFile("truncated.gguf", Array(bytes.prefix(length)))
            XCTAssertThrowsGGUFError(try GGUFFile(path: p), "length \(length)")
        }
    }

    func testTruncationMessageNamesTheMetadataKey() throws {
        let bytes = RawGGUF.valid.bytes
        // Cut inside the second key's array element type.
        let cut = 4 + 4 + 8 + 8 + (8 + 20 + 4 + 8 + 5) + (8 + 25 + 4 + 2)
        let p = try writeFile("model.gguf", Array(bytes.prefix(cut)))
        XCTAssertThrowsGGUFError(try GGUFFile(path: p)) {
            XCTAssertTrue($0.description.hasPrefix("model.gguf: truncated while reading metadata key #1 ('tokenizer.ggml.token_type') value"), $0.description)
        }
    }

    func testAbsurdStringLengthIsRejected() throws {
        var raw = RawGGUF.valid
        raw.keyValues[0].payload = RawGGUF.le(UInt64.max) + Array("llama".utf8)
        XCTAssertThrowsGGUFError(try open(raw)) {
            guard case let .implausibleCount(_, field, count, _) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(field, "metadata key #0 ('general.architecture') value length")
            XCTAssertEqual(count, .max)
        }
    }

    func testAbsurdKeyNameLengthIsRejected() throws {
        var bytes = RawGGUF.valid.bytes
        bytes.replaceSubrange(24..<32, with: RawGGUF.le(UInt64(1) << 62))
        XCTAssertThrowsGGUFError(try GGUFFile(path: try writeFile("x.gguf", bytes))) {
            XCTAssertTrue($0.description.contains("metadata key #0 name length"), $0.description)
        }
    }

    func testAbsurdArrayCountIsRejected() throws {
        var raw = RawGGUF.valid
        raw.keyValues[1].payload = RawGGUF.le(UInt32(5)) + RawGGUF.le(UInt64(1) << 60) + RawGGUF.le(Int32(1))
        XCTAssertThrowsGGUFError(try open(raw)) {
            guard case let .implausibleCount(_, field, _, _) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(field, "metadata key #1 ('tokenizer.ggml.token_type') value element count")
        }
    }

    func testAbsurdKeyAndTensorCountsAreRejected() throws {
        var raw = RawGGUF.valid
        raw.keyCount = 1 << 40
        XCTAssertThrowsGGUFError(try open(raw)) { XCTAssertTrue($0.description.contains("metadata key count")) }
        raw = .valid
        raw.tensorCount = .max
        XCTAssertThrowsGGUFError(try open(raw)) { XCTAssertTrue($0.description.contains("tensor count")) }
    }

    func testUnknownValueTypeIsRejected() throws {
        var raw = RawGGUF.valid
        raw.keyValues[0].type = 13
        XCTAssertThrowsGGUFError(try open(raw)) {
            XCTAssertEqual($0, .unknownValueType(file: "hostile.gguf", field: "metadata key #0 ('general.architecture') value", typeID: 13))
        }
    }

    func testUnknownArrayElementTypeIsRejected() throws {
        var raw = RawGGUF.valid
        raw.keyValues[1].payload = RawGGUF.le(UInt32(99)) + RawGGUF.le(UInt64(0))
        XCTAssertThrowsGGUFError(try open(raw)) {
            guard case .unknownValueType(_, _, 99) = $0 else { return XCTFail("\($0)") }
        }
    }

    func testDeeplyNestedArraysAreRejected() throws {
        var raw = RawGGUF.valid
        var payload: [UInt8] = []
        for _ in 0..<20 { payload += RawGGUF.le(UInt32(9)) + RawGGUF.le(UInt64(1)) }
        payload += RawGGUF.le(UInt32(0)) + RawGGUF.le(UInt64(0))
        raw.keyValues[1].payload = payload
        XCTAssertThrowsGGUFError(try open(raw)) {
            guard case .nestingTooDeep = $0 else { return XCTFail("\($0)") }
        }
    }

    func testDuplicateMetadataKeysAreRejected() throws {
        var raw = RawGGUF.valid
        raw.keyValues.append(raw.keyValues[0])
        XCTAssertThrowsGGUFError(try open(raw)) { XCTAssertEqual($0, .duplicateMetadataKey(file: "hostile.gguf", key: "general.architecture")) }
    }

    /// Issue 16, item 10: a corrupted key of several KB with newlines and NULs was echoed in full.
    func testAGarbledKeyIsEscapedAndCutInTheMessage() throws {
        var raw = RawGGUF.valid
        let garbled = "bad\nkey\u{0}" + String(repeating: "\u{1}x", count: 4000)
        raw.keyValues.append((key: garbled, type: raw.keyValues[0].type, payload: raw.keyValues[0].payload))
        raw.keyValues.append((key: garbled, type: raw.keyValues[0].type, payload: raw.keyValues[0].payload))
        XCTAssertThrowsGGUFError(try open(raw)) { error in
            let message = error.description
            XCTAssertTrue(message.contains("bad\\nkey\\x00\\x01x"), message)
            XCTAssertFalse(message.contains("\n") || message.contains("\u{0}"), message)
            XCTAssertLessThan(message.count, 400)
        }
    }

    func testTensorOffsetBeyondEndOfFileIsRejected() throws {
        var raw = RawGGUF.valid
        raw.tensors[0].offset = 1 << 20
        XCTAssertThrowsGGUFError(try open(raw)) {
            guard case let .tensorDataOutOfBounds(_, tensor, _, byteCount, _) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(tensor, "w")
            XCTAssertEqual(byteCount, 32)
        }
    }

    func testTensorOffsetThatOverflowsIsRejected() throws {
        var raw = RawGGUF.valid
        raw.tensors[0].offset = UInt64.max - 31
        XCTAssertThrowsGGUFError(try open(raw)) {
            guard case .tensorDataOutOfBounds = $0 else { return XCTFail("\($0)") }
        }
    }

    func testTensorDataRunningPastTheEndIsRejected() throws {
        var raw = RawGGUF.valid
        raw.tensors[0].dims = [16]
        XCTAssertThrowsGGUFError(try open(raw)) {
            guard case .tensorDataOutOfBounds(_, "w", _, 64, _) = $0 else { return XCTFail("\($0)") }
        }
    }

    func testATensorWhoseTypeByteChangedIsRejectedAtTheNextTensor() throws {
        var raw = RawGGUF.valid
        // Two F32 tensors of 64 values (256 bytes each); the first claims F16 (128 bytes), so
        // the second no longer starts where the first ends, as llama.cpp's reader also checks.
        raw.tensors = [("w", [64], 0, 0), ("v", [64], 0, 256)]
        raw.data = (0..<128).flatMap { RawGGUF.le(Float(Float($0) * 0.5).bitPattern) }
        XCTAssertNoThrow(try open(raw))
        raw.tensors[0].type = 1
        XCTAssertThrowsGGUFError(try open(raw)) {
            guard case .unexpectedTensorOffset(_, "v", 256, 128) = $0 else { return XCTFail("\($0)") }
        }
    }

    func testTheShippedModelsTensorsAreLaidOutInOrder() throws {
        let path = CLIRoot.url.appendingPathComponent("checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("base model not fetched: scripts/fetch-model.sh") }
        XCTAssertEqual(try GGUFFile(path: path).tensors.count, 272)
    }

    func testMisalignedTensorOffsetIsRejected() throws {
        var raw = RawGGUF.valid
        raw.tensors[0].offset = 4
        raw.data += [UInt8](repeating: 0, count: 64)
        XCTAssertThrowsGGUFError(try open(raw)) {
            XCTAssertEqual($0, .misalignedTensorOffset(file: "hostile.gguf", tensor: "w", offset: 4, alignment: 32))
        }
    }

    func testInvalidTensorTypeIdIsRejected() throws {
        for typeID: UInt32 in [4, 5, 31, 99, .max] {
            var raw = RawGGUF.valid
            raw.tensors[0].type = typeID
            XCTAssertThrowsGGUFError(try open(raw)) {
                XCTAssertEqual($0, .unknownTensorType(file: "hostile.gguf", tensor: "w", typeID: typeID))
            }
        }
    }

    func testDuplicateTensorNamesAreRejected() throws {
        var raw = RawGGUF.valid
        raw.tensors.append(("w", [8], 0, 0))
        XCTAssertThrowsGGUFError(try open(raw)) { XCTAssertEqual($0, .duplicateTensorName(file: "hostile.gguf", tensor: "w")) }
    }

    func testOverflowingDimensionProductIsRejected() throws {
        var raw = RawGGUF.valid
        raw.tensors[0].dims = [1 << 32, 1 << 32, 1 << 32]
        XCTAssertThrowsGGUFError(try open(raw)) {
            guard case .invalidDimensions(_, "w", _, _) = $0 else { return XCTFail("\($0)") }
        }
    }

    func testTooManyDimensionsAreRejected() throws {
        var raw = RawGGUF.valid
        raw.tensors[0].dims = [8, 1, 1, 1, 1]
        XCTAssertThrowsGGUFError(try open(raw)) {
            guard case .invalidDimensions(_, "w", _, _) = $0 else { return XCTFail("\($0)") }
        }
    }

    func testRowLengthThatIsNotWholeBlocksIsRejected() throws {
        var raw = RawGGUF.valid
        raw.tensors[0].type = GGMLType.q8_0.rawValue
        raw.tensors[0].dims = [16]
        XCTAssertThrowsGGUFError(try open(raw)) {
            XCTAssertTrue($0.description.contains("block size 32"), $0.description)
        }
    }

    func testBadMagicAndVersionsAreRejected() throws {
        var raw = RawGGUF.valid
        raw.magic = 0x1234_5678
        XCTAssertThrowsGGUFError(try open(raw)) { XCTAssertEqual($0, .notGGUF(file: "hostile.gguf", magic: 0x1234_5678)) }
        for version: UInt32 in [1, 4, 0x0300_0000] {
            raw = .valid
            raw.version = version
            XCTAssertThrowsGGUFError(try open(raw)) { XCTAssertEqual($0, .unsupportedVersion(file: "hostile.gguf", version: version)) }
        }
    }

    func testInvalidAlignmentIsRejected() throws {
        for value: UInt32 in [0, 3, 48] {
            var raw = RawGGUF.valid
            raw.keyValues.append(("general.alignment", 4, RawGGUF.le(value)))
            XCTAssertThrowsGGUFError(try open(raw)) {
                guard case .invalidAlignment = $0 else { return XCTFail("\($0)") }
            }
        }
    }

    func testMissingFileIsReportedAsCannotOpen() {
        XCTAssertThrowsGGUFError(try GGUFFile(path: path("absent.gguf"))) {
            guard case .cannotOpen(file: "absent.gguf", _) = $0 else { return XCTFail("\($0)") }
        }
    }

    func testRandomByteCorruptionNeverCrashes() throws {
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.quantGGUFPath())))
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var bytes = original
            // Corrupt a few header bytes (the first 1 KB holds metadata and tensor infos).
            for _ in 0..<3 { bytes[Int.random(in: 0..<1024, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            let p = try writeFile("corrupt.gguf", bytes)
            if let file = try? GGUFFile(path: p) {
                for info in file.tensors where info.type.isSupportedForDequantization { _ = try? file.dequantize(info) }
            }
        }
    }
}

private enum CLIRoot {
    static var url: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}
