import Foundation
import Tensors
import XCTest
@testable import ModelFormats

final class GGUFWriterTests: TemporaryDirectoryTestCase {
    func testMetadataOfEveryTypeRoundTrips() throws {
        let values: [(String, GGUFMetadataValue)] = [
            ("u8", .uint8(255)), ("i8", .int8(-128)), ("u16", .uint16(65535)), ("i16", .int16(-32768)),
            ("u32", .uint32(.max)), ("i32", .int32(.min)), ("u64", .uint64(.max)), ("i64", .int64(.min)),
            ("f32", .float32(-0.125)), ("f64", .float64(.pi)), ("bool", .bool(true)), ("s", .string("ünï\0code")),
            ("strings", .array([.string("a"), .string("")])), ("empty", .array([])),
            ("nested", .array([.array([.int32(1), .int32(2)]), .array([])])),
        ]
        let writer = GGUFWriter()
        for (k, v) in values { try writer.setMetadata(k, v) }
        try writer.write(to: path("m.gguf"))
        let file = try GGUFFile(path: path("m.gguf"))
        XCTAssertEqual(file.metadataKeys, values.map(\.0))
        for (k, v) in values { XCTAssertEqual(file.metadata[k], v, k) }
    }

    func testReplacingAKeyKeepsItsPosition() throws {
        let writer = GGUFWriter()
        try writer.setMetadata("a", .uint8(1))
        try writer.setMetadata("b", .uint8(2))
        try writer.setMetadata("a", .string("x"))
        XCTAssertEqual(writer.metadataKeys, ["a", "b"])
    }

    func testMixedTypeArraysAreRejected() {
        let writer = GGUFWriter()
        XCTAssertThrowsError(try writer.setMetadata("bad", .array([.uint8(1), .string("x")]))) {
            XCTAssertTrue("\($0)".contains("'bad'"))
        }
    }

    func testF32AndF16TensorsRoundTrip() throws {
        let a = try Tensor(shape: [2, 3], scalars: [1, -2, 0.5, 3.25, -0.001, 1e4])
        let writer = GGUFWriter()
        try writer.addTensor("a32", a)
        try writer.addTensor("a16", a, as: .f16)
        try writer.write(to: path("t.gguf"))
        let file = try GGUFFile(path: path("t.gguf"))
        XCTAssertEqual(file.tensorInfo(named: "a32")?.dimensions, [3, 2])
        XCTAssertEqual(try file.dequantize(named: "a32").scalars, a.scalars)
        let half = try file.dequantize(named: "a16")
        XCTAssertEqual(half.shape, [2, 3])
        for (h, f) in zip(half.scalars, a.scalars) { XCTAssertEqual(h, f, accuracy: abs(f) * 1e-3) }
    }

    func testCustomAlignmentIsRecordedAndApplied() throws {
        let writer = GGUFWriter(alignment: 128)
        try writer.addTensor("x", Tensor(shape: [3], repeating: 1))
        try writer.addTensor("y", Tensor(shape: [5], repeating: 2))
        try writer.write(to: path("a.gguf"))
        let file = try GGUFFile(path: path("a.gguf"))
        XCTAssertEqual(file.alignment, 128)
        XCTAssertEqual(file.tensorInfo(named: "y")?.offset, 128)
        XCTAssertEqual(try file.dequantize(named: "y").scalars, [2, 2, 2, 2, 2])
    }

    func testAlignmentKeyCanBePlacedAfterTheArchitectureAsGGUFPyDoes() throws {
        let writer = GGUFWriter(alignment: 64)
        try writer.setMetadata("general.architecture", .string("fixture"))
        try writer.setMetadata("general.alignment", .uint32(64))
        try writer.write(to: path("a.gguf"))
        XCTAssertEqual(try GGUFFile(path: path("a.gguf")).metadataKeys, ["general.architecture", "general.alignment"])
    }

    func testAnAlignmentKeyDisagreeingWithTheWriterIsRejected() {
        XCTAssertThrowsError(try GGUFWriter(alignment: 64).setMetadata("general.alignment", .uint32(32))) {
            XCTAssertTrue("\($0)".contains("general.alignment"), "\($0)")
        }
    }

    func testWritingReplacesTheFileAndLeavesNoTemporaryFiles() throws {
        let target = path("w.gguf")
        try writeFile("w.gguf", [1, 2, 3])
        let writer = GGUFWriter()
        try writer.setMetadata("k", .bool(false))
        try writer.write(to: target)
        XCTAssertEqual(try GGUFFile(path: target).metadata["k"], .bool(false))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["w.gguf"])
    }

    func testWritingIntoAMissingDirectoryFailsNamingTheFile() {
        let writer = GGUFWriter()
        XCTAssertThrowsGGUFError(try writer.write(to: path("missing/x.gguf"))) {
            guard case .writeFailed(file: "x.gguf", _) = $0 else { return XCTFail("\($0)") }
        }
    }

    func testRawTensorsMustMatchTheirTypesLayout() {
        let writer = GGUFWriter()
        XCTAssertThrowsError(try writer.addRawTensor("q", dimensions: [32], type: .q8_0, data: [UInt8](repeating: 0, count: 33)))
        XCTAssertThrowsError(try writer.addRawTensor("q", dimensions: [16], type: .q8_0, data: [UInt8](repeating: 0, count: 17)))
    }

    func testDuplicateTensorNamesAreRejected() throws {
        let writer = GGUFWriter()
        try writer.addTensor("x", Tensor(zeros: [1]))
        XCTAssertThrowsError(try writer.addTensor("x", Tensor(zeros: [1])))
    }
}
