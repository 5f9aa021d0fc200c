import Foundation
import Tensors
import XCTest
@testable import ModelFormats

final class SafetensorsTests: TemporaryDirectoryTestCase {
    /// Builds a safetensors file from a header JSON string and data bytes.
    private func rawFile(_ name: String, header: String, data: [UInt8], headerLength: UInt64? = nil) throws -> String {
        let h = Array(header.utf8)
        return try writeFile(name, RawGGUF.le(headerLength ?? UInt64(h.count)) + h + data)
    }

    private func assertSafetensorsError(_ expression: @autoclosure () throws -> Any, file: StaticString = #filePath,
                                        line: UInt = #line, _ check: (SafetensorsError) -> Void) {
        do {
            _ = try expression()
            XCTFail("expected a SafetensorsError", file: file, line: line)
        } catch let error as SafetensorsError {
            check(error)
        } catch {
            XCTFail("expected a SafetensorsError, got \(error)", file: file, line: line)
        }
    }

    func testWriterOutputRoundTripsTensorsAndMetadata() throws {
        let a = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = try Tensor(shape: [4], scalars: [-1, 0.5, .infinity, 0])
        let writer = SafetensorsWriter(metadata: ["format": "pt", "quote\"d": "a\nb"])
        try writer.addTensor("layer.a", a)
        try writer.addTensor("b", b)
        try writer.write(to: path("m.safetensors"))
        let file = try SafetensorsFile(path: path("m.safetensors"))
        XCTAssertEqual(file.metadata, ["format": "pt", "quote\"d": "a\nb"])
        XCTAssertEqual(file.tensorNames, ["layer.a", "b"])
        XCTAssertEqual(file.dataOffset % 8, 0)
        XCTAssertEqual(try file.tensor(named: "layer.a").shape, [2, 3])
        XCTAssertEqual(try file.tensor(named: "layer.a").scalars, a.scalars)
        XCTAssertEqual(try file.tensor(named: "b").scalars, b.scalars)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["m.safetensors"])
    }

    func testF16AndBF16TensorsLoadAsFloat32() throws {
        let f16: [UInt8] = [0x00, 0x3c, 0x00, 0xc0]        // 1.0, -2.0
        let bf16: [UInt8] = [0x80, 0x3f, 0x40, 0x40]       // 1.0, 3.0
        let header = #"{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[4,8]}}"#
        let file = try SafetensorsFile(path: try rawFile("x.safetensors", header: header, data: f16 + bf16))
        XCTAssertEqual(try file.tensor(named: "h").scalars, [1, -2])
        XCTAssertEqual(try file.tensor(named: "b").shape, [1, 2])
        XCTAssertEqual(try file.tensor(named: "b").scalars, [1, 3])
    }

    func testUnsupportedDTypeFailsNamingTensorAndDType() throws {
        let header = #"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#
        let file = try SafetensorsFile(path: try rawFile("x.safetensors", header: header, data: [UInt8](repeating: 0, count: 8)))
        assertSafetensorsError(try file.tensor(named: "ids")) {
            XCTAssertEqual($0, .unsupportedDType(file: "x.safetensors", tensor: "ids", dtype: .I64))
            XCTAssertTrue($0.description.contains("'ids'") && $0.description.contains("I64"))
        }
    }

    func testUnknownDTypeIsRejectedOnOpen() throws {
        let header = #"{"t":{"dtype":"F4","shape":[1],"data_offsets":[0,1]}}"#
        assertSafetensorsError(try SafetensorsFile(path: try self.rawFile("x.safetensors", header: header, data: [0]))) {
            XCTAssertEqual($0, .unknownDType(file: "x.safetensors", tensor: "t", dtype: "F4"))
        }
    }

    func testHeaderLengthBeyondTheFileIsRejected() throws {
        for length: UInt64 in [1 << 40, .max, 100] {
            assertSafetensorsError(try SafetensorsFile(path: try self.rawFile("x.safetensors", header: "{}", data: [], headerLength: length))) {
                guard case .invalidHeaderLength = $0 else { return XCTFail("\($0)") }
            }
        }
    }

    func testFilesShorterThanTheLengthPrefixAreRejected() throws {
        for n in 0..<8 {
            assertSafetensorsError(try SafetensorsFile(path: try self.writeFile("s.safetensors", [UInt8](repeating: 2, count: n)))) {
                guard case .invalidHeaderLength = $0 else { return XCTFail("\($0)") }
            }
        }
    }

    func testHeaderThatIsNotJSONIsRejected() throws {
        assertSafetensorsError(try SafetensorsFile(path: try self.rawFile("x.safetensors", header: "{\"a\": [", data: []))) {
            guard case .invalidHeader = $0 else { return XCTFail("\($0)") }
        }
    }

    func testOffsetsOutsideTheDataSectionAreRejected() throws {
        let header = #"{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        assertSafetensorsError(try SafetensorsFile(path: try self.rawFile("x.safetensors", header: header, data: [UInt8](repeating: 0, count: 8)))) {
            XCTAssertEqual($0, .tensorDataOutOfBounds(file: "x.safetensors", tensor: "t", offsets: [0, 16], dataSize: 8))
        }
    }

    func testByteCountMustMatchShapeAndDType() throws {
        let header = #"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        assertSafetensorsError(try SafetensorsFile(path: try self.rawFile("x.safetensors", header: header, data: [UInt8](repeating: 0, count: 8)))) {
            guard case .invalidTensorEntry(_, "t", _) = $0 else { return XCTFail("\($0)") }
        }
    }

    func testNegativeOrReversedOffsetsAreRejected() throws {
        for offsets in ["[-4,0]", "[8,4]", "[0]", "[0.5,4.5]"] {
            let header = #"{"t":{"dtype":"F32","shape":[1],"data_offsets":"# + offsets + "}}"
            XCTAssertThrowsError(try SafetensorsFile(path: try self.rawFile("x.safetensors", header: header, data: [UInt8](repeating: 0, count: 8))), offsets)
        }
    }

    func testOverflowingShapeIsRejected() throws {
        let header = #"{"t":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}}"#
        assertSafetensorsError(try SafetensorsFile(path: try self.rawFile("x.safetensors", header: header, data: [0, 0, 0, 0]))) {
            guard case .invalidTensorEntry(_, "t", _) = $0 else { return XCTFail("\($0)") }
        }
    }

    func testOverlappingTensorsAreRejected() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        assertSafetensorsError(try SafetensorsFile(path: try self.rawFile("x.safetensors", header: header, data: [UInt8](repeating: 0, count: 12)))) {
            guard case .overlappingTensors = $0 else { return XCTFail("\($0)") }
        }
    }

    func testShardedCheckpointResolvesTensorsThroughTheIndex() throws {
        let w1 = SafetensorsWriter()
        try w1.addTensor("a", Tensor(shape: [2], repeating: 1))
        try w1.write(to: path("model-00001-of-00002.safetensors"))
        let w2 = SafetensorsWriter()
        try w2.addTensor("b", Tensor(shape: [3], repeating: 2))
        try w2.write(to: path("model-00002-of-00002.safetensors"))
        let index = #"{"metadata":{"total_size":20},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#
        try writeFile("model.safetensors.index.json", Array(index.utf8))
        let checkpoint = try SafetensorsCheckpoint(path: directory)
        XCTAssertEqual(checkpoint.tensorNames, ["a", "b"])
        XCTAssertEqual(checkpoint.files.count, 2)
        XCTAssertEqual(checkpoint.metadata["total_size"], "20")
        XCTAssertEqual(try checkpoint.tensor(named: "b").scalars, [2, 2, 2])
        XCTAssertThrowsError(try checkpoint.tensor(named: "c"))
    }

    func testSingleFileCheckpointOpensFromItsDirectory() throws {
        let writer = SafetensorsWriter()
        try writer.addTensor("x", Tensor(shape: [1], repeating: 7))
        try writer.write(to: path("model.safetensors"))
        XCTAssertEqual(try SafetensorsCheckpoint(path: directory).tensor(named: "x").scalars, [7])
    }

    func testIndexPointingOutsideItsDirectoryIsRejected() throws {
        let index = #"{"weight_map":{"a":"../../etc/passwd"}}"#
        try writeFile("model.safetensors.index.json", Array(index.utf8))
        assertSafetensorsError(try SafetensorsCheckpoint(path: directory)) {
            guard case .invalidIndex = $0 else { return XCTFail("\($0)") }
        }
    }

    func testIndexNamingATensorItsShardLacksIsRejected() throws {
        let writer = SafetensorsWriter()
        try writer.addTensor("a", Tensor(shape: [1], repeating: 1))
        try writer.write(to: path("s1.safetensors"))
        try writeFile("model.safetensors.index.json", Array(#"{"weight_map":{"zzz":"s1.safetensors"}}"#.utf8))
        assertSafetensorsError(try SafetensorsCheckpoint(path: directory)) {
            XCTAssertTrue($0.description.contains("'zzz'"), $0.description)
        }
    }

    func testEveryTruncationOfAWrittenFileThrows() throws {
        let writer = SafetensorsWriter(metadata: ["k": "v"])
        try writer.addTensor("w", Tensor(shape: [2, 2], repeating: 1))
        try writer.write(to: path("full.safetensors"))
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path("full.safetensors"))))
        for length in 0..<bytes.count {
            XCTAssertThrowsError(try SafetensorsFile(path: try self.writeFile("cut.safetensors", Array(bytes.prefix(length)))), "length \(length)")
        }
    }
}
