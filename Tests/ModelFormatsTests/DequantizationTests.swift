import CKernels
import Foundation
import Tensors
import XCTest
@testable import ModelFormats

/// Compares the C kernels with gguf-py's dequantisation (fixtures from
/// scripts/reference/make_quant_fixtures.py).
final class DequantizationTests: XCTestCase {
    struct ExpectedIndex: Decodable {
        struct Entry: Decodable { let name: String; let type: String; let ne: [Int]; let offset: Int; let count: Int }
        let tensors: [Entry]
    }

    struct ModelExpectations: Decodable {
        struct Entry: Decodable {
            let name: String; let type: String; let ne: [Int]
            let row0_first64: [Float]; let last_row_index: Int; let last_row_first64: [Float]
        }
        let tensors: [Entry]
    }

    private func expectedValues() throws -> (ExpectedIndex, [Float]) {
        let index = try JSONDecoder().decode(ExpectedIndex.self, from: Data(contentsOf: Fixtures.url("quant_expected.json")))
        let data = try Data(contentsOf: Fixtures.url("quant_expected.bin"))
        let values = data.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
        return (index, values)
    }

    private func assertClose(_ actual: [Float], _ expected: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, what, file: file, line: line)
        var worst: Float = 0
        for (a, e) in zip(actual, expected) { worst = max(worst, abs(a - e) / max(1, abs(e))) }
        XCTAssertLessThanOrEqual(worst, 1e-6, "\(what): max relative difference \(worst)", file: file, line: line)
    }

    private func checkType(_ name: String) throws {
        let (index, values) = try expectedValues()
        let entry = try XCTUnwrap(index.tensors.first { $0.name == name })
        let file = try GGUFFile(path: try Fixtures.quantGGUFPath())
        let tensor = try file.dequantize(named: name)
        XCTAssertEqual(tensor.shape, Shape(entry.ne.reversed()))
        assertClose(tensor.scalars, Array(values[entry.offset..<(entry.offset + entry.count)]), name)
    }

    func testF32MatchesGGUFPy() throws { try checkType("t.f32") }
    func testF16MatchesGGUFPy() throws { try checkType("t.f16") }
    func testBF16MatchesGGUFPy() throws { try checkType("t.bf16") }
    func testQ8_0MatchesGGUFPy() throws { try checkType("t.q8_0") }
    func testQ4_0MatchesGGUFPy() throws { try checkType("t.q4_0") }
    func testQ4_1MatchesGGUFPy() throws { try checkType("t.q4_1") }
    func testQ4_KMatchesGGUFPy() throws { try checkType("t.q4_k") }
    func testQ5_KMatchesGGUFPy() throws { try checkType("t.q5_k") }
    func testQ6_KMatchesGGUFPy() throws { try checkType("t.q6_k") }

    func testDequantizeRowsAddressesRowsOfTheNe0View() throws {
        let file = try GGUFFile(path: try Fixtures.quantGGUFPath())
        let info = try XCTUnwrap(file.tensorInfo(named: "t.q6_k"))
        let whole = try file.dequantize(info).scalars
        var row = [Float](repeating: .nan, count: 256)
        try row.withUnsafeMutableBufferPointer { try file.dequantizeRows(info, rows: 1..<2, into: $0.baseAddress!) }
        XCTAssertEqual(row, Array(whole[256...]))
    }

    func testDequantizeRowsRejectsRowsOutsideTheTensor() throws {
        let file = try GGUFFile(path: try Fixtures.quantGGUFPath())
        let info = try XCTUnwrap(file.tensorInfo(named: "t.q4_0"))
        var buffer = [Float](repeating: 0, count: 256)
        XCTAssertThrowsGGUFError(try buffer.withUnsafeMutableBufferPointer { try file.dequantizeRows(info, rows: 1..<3, into: $0.baseAddress!) }) {
            XCTAssertTrue($0.description.contains("'t.q4_0'"), $0.description)
        }
    }

    func testUnsupportedTypesFailNamingTensorAndType() throws {
        let writer = GGUFWriter()
        try writer.addRawTensor("q5", dimensions: [32], type: .q5_0, data: [UInt8](repeating: 0, count: 22))
        let p = NSTemporaryDirectory() + "unsupported-\(UUID().uuidString).gguf"
        defer { unlink(p) }
        try writer.write(to: p)
        let file = try GGUFFile(path: p)
        XCTAssertThrowsGGUFError(try file.dequantize(named: "q5")) {
            XCTAssertEqual($0, .unsupportedTensorType(file: fileName(p), tensor: "q5", type: .q5_0))
            XCTAssertTrue($0.description.contains("Q5_0"))
        }
    }

    func testHalfConversionRoundTripsEveryFiniteHalf() {
        for bits in UInt16.min...UInt16.max where (bits & 0x7c00) != 0x7c00 {
            XCTAssertEqual(tc_f32_to_f16(tc_f16_to_f32(bits)), bits, "half 0x\(String(bits, radix: 16))")
        }
    }

    /// Half subnormals (tiny weights, tiny Q8_0 / Q4_K block scales) are normal floats: their
    /// conversion must not pass through a float subnormal, which reads as 0 where subnormals are
    /// flushed, as they are on every computing thread.
    func testHalfSubnormalsConvertExactlyWhereSubnormalsAreFlushed() {
        SubnormalFlushing.setForCurrentThread(true)
        XCTAssertEqual(tc_f16_to_f32(0x0001), 0x1p-24)
        XCTAssertEqual(tc_f16_to_f32(0x83ff), -1023 * 0x1p-24)
        var row = [Float](repeating: -1, count: 3)
        tc_f16_to_f32_row([0x0001, 0x0200, 0x0400], &row, 3)
        XCTAssertEqual(row, [0x1p-24, 512 * 0x1p-24, 0x1p-14])
    }

    func testHalfConversionRoundsToNearestEvenAndSaturatesToInfinity() {
        XCTAssertEqual(tc_f32_to_f16(1 + 0x1p-11), 0x3c00)          // tie -> even (1.0)
        XCTAssertEqual(tc_f32_to_f16(1 + 3 * 0x1p-11), 0x3c02)      // tie -> even (1 + 2^-9)
        XCTAssertEqual(tc_f32_to_f16(65519), 0x7bff)
        XCTAssertEqual(tc_f32_to_f16(65520), 0x7c00)
        XCTAssertEqual(tc_f32_to_f16(-.infinity), 0xfc00)
        XCTAssertTrue(tc_f16_to_f32(tc_f32_to_f16(.nan)).isNaN)
        XCTAssertEqual(tc_f32_to_f16(0x1p-25), 0)                   // tie -> even (0)
        XCTAssertEqual(tc_f32_to_f16(0x1p-24), 1)                   // smallest subnormal
    }

    func testBaseModelTensorsMatchGGUFPy() throws {
        let file = try GGUFFile(path: try Fixtures.baseModelPath())
        let expectations = try JSONDecoder().decode(ModelExpectations.self, from: Data(contentsOf: Fixtures.url("smollm2_expected.json")))
        XCTAssertEqual(Set(expectations.tensors.map(\.type)), ["Q4_1", "Q8_0", "F32"])
        for entry in expectations.tensors {
            let info = try XCTUnwrap(file.tensorInfo(named: entry.name))
            XCTAssertEqual(info.dimensions, entry.ne)
            let ne0 = info.dimensions[0]
            var row = [Float](repeating: .nan, count: ne0)
            for (index, expected) in [(0, entry.row0_first64), (entry.last_row_index, entry.last_row_first64)] {
                try row.withUnsafeMutableBufferPointer { try file.dequantizeRows(info, rows: index..<(index + 1), into: $0.baseAddress!) }
                assertClose(Array(row.prefix(64)), expected, "\(entry.name) row \(index)")
            }
        }
    }

    func testDequantizingAWholeModelTensorMatchesRowByRow() throws {
        let file = try GGUFFile(path: try Fixtures.baseModelPath())
        let info = try XCTUnwrap(file.tensorInfo(named: "blk.0.ffn_down.weight"))
        let whole = try file.dequantize(info)
        XCTAssertEqual(whole.shape, [576, 1536])
        var row = [Float](repeating: .nan, count: 1536)
        try row.withUnsafeMutableBufferPointer { try file.dequantizeRows(info, rows: 300..<301, into: $0.baseAddress!) }
        XCTAssertEqual(Array(whole.scalars[(300 * 1536)..<(301 * 1536)]), row)
    }
}
