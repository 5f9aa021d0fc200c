import Foundation
import ModelFormats
import Tensors
import XCTest

/// GGUFWriter's Q8_0 and Q4_0 blocks are byte for byte what gguf-py (llama.cpp's Python
/// package) writes for the same float32 values (scripts/reference/make_quant_fixture.py).
final class GGUFQuantisationTests: XCTestCase {
    struct Reference: Decodable {
        let shape: [Int]
        let values: [Double]
        let q8_0: String
        let q4_0: String
    }

    private func encoded(_ type: GGMLType, _ reference: Reference) throws -> (bytes: String, readBack: Tensor) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tc-quant-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = GGUFWriter()
        try writer.setMetadata("general.architecture", .string("llama"))
        try writer.addTensor("w", try Tensor(shape: Shape(reference.shape), scalars: reference.values.map(Float.init)), as: type)
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        let info = try XCTUnwrap(file.tensorInfo(named: "w"))
        XCTAssertEqual(info.type, type)
        return (file.rawBytes(of: info).map { String(format: "%02x", $0) }.joined(), try file.dequantize(info))
    }

    func testQ8_0AndQ4_0BlocksEqualGGUFPys() throws {
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Fixtures.url("quant_reference.json")))
        XCTAssertEqual(try encoded(.q8_0, reference).bytes, reference.q8_0)
        XCTAssertEqual(try encoded(.q4_0, reference).bytes, reference.q4_0)
    }

    /// Within half a step; Q4_0's one extra step is the clipped 16th level (the value opposite in
    /// sign to the block's largest reads back at 7/8 of it). The scale is stored as f16, whose
    /// rounding (2^-11 relative) adds up to 127 x 2^-11 = 0.062 of a step at Q8_0's largest codes.
    func testQuantisedValuesReadBackWithinHalfAStep() throws {
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: Fixtures.url("quant_reference.json")))
        for (type, steps, slack) in [(GGMLType.q8_0, 127.0, 0.5), (.q4_0, 8.0, 1.0)] {
            let back = try encoded(type, reference).readBack
            for block in 0..<(reference.values.count / 32) {
                let slice = reference.values[(block * 32)..<(block * 32 + 32)]
                let scale = (slice.map { abs($0) }.max() ?? 0) / steps
                for i in slice.indices {
                    XCTAssertEqual(Double(back.pointer[i]), slice[i], accuracy: scale * (slack + 0.07) + 1e-7, "\(type) element \(i)")
                }
            }
        }
    }

    func testARowThatIsNotWholeBlocksIsRefused() throws {
        XCTAssertThrowsError(try GGUFWriter().addTensor("w", Tensor(shape: [2, 48], repeating: 1), as: .q8_0)) {
            XCTAssertTrue("\($0)".contains("rows of 48 values are not whole Q8_0 blocks of 32"), "\($0)")
        }
    }
}
