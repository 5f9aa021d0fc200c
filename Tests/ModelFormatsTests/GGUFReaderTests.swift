import Foundation
import Tensors
import XCTest
@testable import ModelFormats

final class GGUFReaderTests: TemporaryDirectoryTestCase {
    func testReadsMetadataOfEveryScalarTypeWrittenByGGUFPy() throws {
        let file = try GGUFFile(path: try Fixtures.quantGGUFPath())
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.metadata["fixture.u8"], .uint8(200))
        XCTAssertEqual(file.metadata["fixture.i8"], .int8(-100))
        XCTAssertEqual(file.metadata["fixture.u16"], .uint16(60000))
        XCTAssertEqual(file.metadata["fixture.i16"], .int16(-30000))
        XCTAssertEqual(file.metadata["fixture.u32"], .uint32(4_000_000_000))
        XCTAssertEqual(file.metadata["fixture.i32"], .int32(-2_000_000_000))
        XCTAssertEqual(file.metadata["fixture.u64"], .uint64(1 << 40))
        XCTAssertEqual(file.metadata["fixture.i64"], .int64(-(1 << 40)))
        XCTAssertEqual(file.metadata["fixture.f32"], .float32(0.25))
        XCTAssertEqual(file.metadata["fixture.f64"], .float64(-1.5e-300))
        XCTAssertEqual(file.metadata["fixture.bool"], .bool(true))
        XCTAssertEqual(file.metadata["fixture.string"]?.stringValue, "héllo ✓")
        XCTAssertEqual(file.metadata["fixture.strings"]?.stringArray, ["a", "", "ünïcode"])
        XCTAssertEqual(file.metadata["fixture.ints"]?.intArray, [1, -2, 3])
    }

    func testKeepsMetadataKeysInFileOrder() throws {
        let file = try GGUFFile(path: try Fixtures.quantGGUFPath())
        XCTAssertEqual(Array(file.metadataKeys.prefix(4)), ["general.architecture", "general.alignment", "fixture.u8", "fixture.i8"])
        XCTAssertEqual(file.metadataKeys.count, file.metadata.count)
    }

    func testHonoursGeneralAlignment() throws {
        let file = try GGUFFile(path: try Fixtures.quantGGUFPath())
        XCTAssertEqual(file.alignment, 64)
        XCTAssertEqual(file.dataOffset % 64, 0)
        XCTAssertTrue(file.tensors.allSatisfy { $0.offset % 64 == 0 })
    }

    func testTensorInfoShapeIsReversedNeOrder() throws {
        let file = try GGUFFile(path: try Fixtures.quantGGUFPath())
        let info = try XCTUnwrap(file.tensorInfo(named: "t.q4_k"))
        XCTAssertEqual(info.dimensions, [256, 2])
        XCTAssertEqual(info.shape, [2, 256])
        XCTAssertEqual(info.type, .q4_K)
        XCTAssertEqual(info.elementCount, 512)
        XCTAssertEqual(info.byteCount, 2 * 144)
        XCTAssertEqual(file.rawBytes(of: info).count, 288)
        XCTAssertNil(file.tensorInfo(named: "missing"))
    }

    func testMetadataAccessorsConvertBetweenNumberTypes() {
        XCTAssertEqual(GGUFMetadataValue.uint32(7).intValue, 7)
        XCTAssertEqual(GGUFMetadataValue.int8(-3).doubleValue, -3)
        XCTAssertEqual(GGUFMetadataValue.float32(0.5).doubleValue, 0.5)
        XCTAssertNil(GGUFMetadataValue.float32(0.5).intValue)
        XCTAssertNil(GGUFMetadataValue.uint64(.max).intValue)
        XCTAssertNil(GGUFMetadataValue.array([.string("a"), .uint8(1)]).stringArray)
        XCTAssertEqual(GGUFMetadataValue.array([.float32(1), .int32(2)]).doubleArray, [1, 2])
        XCTAssertEqual(GGUFMetadataValue.bool(false).boolValue, false)
    }

    func testReadsVersion2Files() throws {
        var raw = RawGGUF.valid
        raw.version = 2
        let file = try GGUFFile(path: try writeFile("v2.gguf", raw.bytes))
        XCTAssertEqual(file.version, 2)
        XCTAssertEqual(try file.dequantize(named: "w").scalars, (0..<8).map { Float($0) * 0.5 })
    }

    func testGGMLTypeSizesMatchGGML() {
        XCTAssertEqual(GGMLType.q4_0.bytesPerBlock, 18)
        XCTAssertEqual(GGMLType.q4_1.bytesPerBlock, 20)
        XCTAssertEqual(GGMLType.q8_0.bytesPerBlock, 34)
        XCTAssertEqual(GGMLType.q4_K.bytesPerBlock, 144)
        XCTAssertEqual(GGMLType.q5_K.bytesPerBlock, 176)
        XCTAssertEqual(GGMLType.q6_K.bytesPerBlock, 210)
        XCTAssertEqual(GGMLType.q6_K.blockSize, 256)
        XCTAssertEqual(GGMLType.bf16.rawValue, 30)
        XCTAssertEqual(GGMLType.q4_K.description, "Q4_K")
        XCTAssertEqual(GGMLType.allCases.filter(\.isSupportedForDequantization),
                       [.f32, .f16, .q4_0, .q4_1, .q8_0, .q4_K, .q5_K, .q6_K, .bf16])
    }

    func testReadsTheBaseModelsMetadataAndTensorTable() throws {
        let file = try GGUFFile(path: try Fixtures.baseModelPath())
        XCTAssertEqual(file.metadata["general.architecture"]?.stringValue, "llama")
        XCTAssertEqual(file.metadata["llama.block_count"]?.intValue, 30)
        XCTAssertEqual(file.metadata["llama.embedding_length"]?.intValue, 576)
        XCTAssertEqual(file.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count, 49152)
        XCTAssertEqual(file.tensors.count, 272)
        let q = try XCTUnwrap(file.tensorInfo(named: "blk.0.attn_q.weight"))
        XCTAssertEqual(q.type, .q4_1)
        XCTAssertEqual(q.shape, [576, 576])
        XCTAssertEqual(file.tensorInfo(named: "token_embd.weight")?.shape, [49152, 576])
    }
}
