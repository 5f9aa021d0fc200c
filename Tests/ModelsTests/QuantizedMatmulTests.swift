import CKernels
import Foundation
import ModelFormats
import Autodiff
@testable import Models
import Tensors
import XCTest

/// The integer decode kernels (tc_quant_matmul.h) against the exact product with dequantised
/// weights.
///
/// Tolerance: activations are rounded to 8 bits per 32-element block, an error of at most
/// amax / 254 per element, so by Cauchy-Schwarz |y - exact| <= |w_r| |error of x_i|, which for
/// these inputs is below 1e-2 |x_i| |w_r|; that is the bound asserted. When x is exactly
/// representable (integers with a +-127 in each block) the kernels must be exact up to Float32
/// rounding (1e-5 relative).
final class QuantizedMatmulTests: XCTestCase {
    static let types: [GGMLType] = [.q4_0, .q4_1, .q8_0, .q4_K, .q5_K, .q6_K]

    /// Random but well-formed blocks: every f16 field is a modest finite scale.
    func randomBlocks(_ type: GGMLType, rows: Int, columns: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix(seed: seed)
        var bytes = (0..<(rows * columns / type.blockSize * type.bytesPerBlock)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        func putHalf(_ value: Float, at offset: Int) {
            let h = tc_f32_to_f16(value)
            bytes[offset] = UInt8(h & 0xff)
            bytes[offset + 1] = UInt8(h >> 8)
        }
        func scale() -> Float { Float(rng.next() % 1000 + 100) / 20_000 * (rng.next() % 2 == 0 ? 1 : -1) }
        for b in 0..<(bytes.count / type.bytesPerBlock) {
            let o = b * type.bytesPerBlock
            switch type {
            case .q4_0, .q8_0: putHalf(scale(), at: o)
            case .q4_1, .q4_K, .q5_K: putHalf(abs(scale()), at: o); putHalf(abs(scale()), at: o + 2)
            case .q6_K: putHalf(scale() / 10, at: o + 208)
            default: XCTFail("no generator for \(type)")
            }
        }
        return bytes
    }

    func dequantized(_ type: GGMLType, _ blocks: [UInt8], rows: Int, columns: Int) -> [Float] {
        var w = [Float](repeating: 0, count: rows * columns)
        let rowBytes = columns / type.blockSize * type.bytesPerBlock
        blocks.withUnsafeBytes { src in
            w.withUnsafeMutableBufferPointer { dst in
                for r in 0..<rows {
                    XCTAssertEqual(tc_dequantize_row(type.rawValue, src.baseAddress! + r * rowBytes,
                                                     dst.baseAddress! + r * columns, Int64(columns)), 0)
                }
            }
        }
        return w
    }

    func randomActivations(count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix(seed: seed)
        return (0..<count).map { _ in Float(Int(rng.next() % 20_001) - 10_000) / 3_000 }
    }

    /// y = x W^T through the C entry point `kernel`, for every row, n activation rows.
    func run(_ kernel: (UInt32, UnsafeRawPointer, Int, Int64, Int64, Int64, UnsafeRawPointer, Int64,
                        UnsafeMutablePointer<Float>, Int64, Int32) -> Int32,
             _ type: GGMLType, _ blocks: [UInt8], rows: Int, columns: Int, x: [Float], n: Int) -> [Float] {
        let rowBytes = columns / type.blockSize * type.bytesPerBlock
        let activations = UnsafeMutableRawPointer.allocate(
            byteCount: tc_quant_activation_bytes(Int64(n), Int64(columns)), alignment: 64)
        defer { activations.deallocate() }
        tc_quantize_activations(x, Int64(n), Int64(columns), activations)
        var y = [Float](repeating: .nan, count: n * rows)
        blocks.withUnsafeBytes { w in
            // two row ranges, as the cores split them
            for range in [0..<(rows / 2), (rows / 2)..<rows] {
                XCTAssertEqual(kernel(type.rawValue, w.baseAddress!, rowBytes, Int64(range.lowerBound), Int64(range.upperBound),
                                      Int64(columns), activations, Int64(n), &y, Int64(rows), 0), 0)
            }
        }
        return y
    }

    func norm(_ v: ArraySlice<Float>) -> Double { v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }

    /// Asserts |y - x W^T| <= tolerance |x_i| |w_r| for every entry.
    func assertClose(_ y: [Float], x: [Float], w: [Float], rows: Int, columns: Int, n: Int, tolerance: Double,
                     _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        var worst = 0.0
        for i in 0..<n {
            let xi = x[(i * columns)..<((i + 1) * columns)]
            for r in 0..<rows {
                let wr = w[(r * columns)..<((r + 1) * columns)]
                let exact = zip(xi, wr).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let bound = max(norm(xi) * norm(wr), 1e-30)
                worst = max(worst, abs(Double(y[i * rows + r]) - exact) / bound)
            }
        }
        XCTAssertLessThanOrEqual(worst, tolerance, message, file: file, line: line)
    }

    func shapes(_ type: GGMLType) -> [(rows: Int, columns: Int)] {
        // odd row counts; an odd number of 32-blocks exercises the unpaired trailing block
        type.blockSize == 32 ? [(37, 160), (5, 64), (3, 32)] : [(37, 512), (3, 256)]
    }

    func testKernelsMatchTheDequantisedProductWithinActivationRounding() {
        for type in Self.types {
            for (rows, columns) in shapes(type) {
                let blocks = randomBlocks(type, rows: rows, columns: columns, seed: UInt64(type.rawValue))
                let w = dequantized(type, blocks, rows: rows, columns: columns)
                for n in [1, 3, 16] {
                    let x = randomActivations(count: n * columns, seed: UInt64(n))
                    for (name, kernel) in [("dispatched", tc_quant_matmul), ("portable", tc_quant_matmul_portable)] {
                        let y = run(kernel, type, blocks, rows: rows, columns: columns, x: x, n: n)
                        assertClose(y, x: x, w: w, rows: rows, columns: columns, n: n, tolerance: 1e-2,
                                    "\(type) \(rows)x\(columns) n=\(n) \(name)")
                    }
                }
            }
        }
    }

    /// The Float32-activation kernel rounds nothing but the sums: 1e-5 of |x| |w_r|.
    func testFloatKernelMatchesTheDequantisedProduct() {
        for type in Self.types + [.f16, .bf16] {
            for (rows, columns) in type.blockSize == 1 ? [(37, 48), (5, 2064)] : shapes(type) + [(6, 2048 + 256)] {
                let blocks = type.blockSize == 1
                    ? (0..<(rows * columns)).flatMap { i -> [UInt8] in
                        let v = Float(i % 97) / 50 - 1
                        let bits = type == .f16 ? tc_f32_to_f16(v) : UInt16(v.bitPattern >> 16)
                        return [UInt8(bits & 0xff), UInt8(bits >> 8)]
                    }
                    : randomBlocks(type, rows: rows, columns: columns, seed: UInt64(type.rawValue) + 40)
                let w = dequantized(type, blocks, rows: rows, columns: columns)
                let rowBytes = blocks.count / rows
                for n in [1, 3, 16, 17] {
                    let x = randomActivations(count: n * columns, seed: UInt64(n) + 9)
                    var y = [Float](repeating: .nan, count: n * rows)
                    blocks.withUnsafeBytes { wp in
                        for range in [0..<(rows / 2), (rows / 2)..<rows] {
                            XCTAssertEqual(tc_quant_matmul_f32(type.rawValue, wp.baseAddress!, rowBytes, Int64(range.lowerBound),
                                                               Int64(range.upperBound), Int64(columns), x, Int64(n), &y, Int64(rows), 0), 0)
                        }
                    }
                    assertClose(y, x: x, w: w, rows: rows, columns: columns, n: n, tolerance: 1e-5,
                                "\(type) \(rows)x\(columns) n=\(n) float kernel")
                }
            }
        }
    }

    /// The x16 (row-interleaved) kernel: exact like the tile kernel, for groups split across cores.
    func testInterleavedKernelMatchesTheDequantisedProduct() {
        for type in [GGMLType.q4_0, .q4_1, .q8_0] {
            for (rows, columns) in [(48, 160), (16, 32), (32, 1088)] {
                let blocks = randomBlocks(type, rows: rows, columns: columns, seed: UInt64(type.rawValue) + 70)
                let w = dequantized(type, blocks, rows: rows, columns: columns)
                var packed = [UInt8](repeating: 0, count: blocks.count)
                XCTAssertEqual(tc_x16_pack(type.rawValue, blocks, blocks.count / rows, Int64(rows), Int64(columns), &packed), 0)
                var row = [Float](repeating: 0, count: columns)
                for r in 0..<rows {
                    XCTAssertEqual(tc_x16_dequantize_row(type.rawValue, packed, Int64(columns), Int64(r), &row), 0)
                    XCTAssertEqual(row, Array(w[(r * columns)..<((r + 1) * columns)]), "\(type) x16 row \(r)")
                }
                for n in [1, 2, 3, 8, 9, 16] {
                    let x = randomActivations(count: n * columns, seed: UInt64(n) + 90)
                    // The AVX2 kernel runs whenever the CPU has AVX2, also where AVX-512 would be dispatched.
                    var kernels = [("dispatched", tc_x16_matmul), ("portable", tc_x16_matmul_portable)]
                    var none = [Float](repeating: 0, count: 16)
                    if Int(tc_x16_matmul_avx2(type.rawValue, packed, 0, 0, Int64(columns), x, 0, &none, 16, 0)) != Int(TC_QMATMUL_UNSUPPORTED_CPU) {
                        kernels.append(("avx2", tc_x16_matmul_avx2))
                    }
                    for (name, kernel) in kernels {
                        var y = [Float](repeating: .nan, count: n * rows)
                        let groups = Int64(rows / 16)
                        for range in [0..<(groups / 2), (groups / 2)..<groups] {
                            XCTAssertEqual(kernel(type.rawValue, packed, range.lowerBound, range.upperBound, Int64(columns), x,
                                                  Int64(n), &y, Int64(rows), 0), 0)
                        }
                        assertClose(y, x: x, w: w, rows: rows, columns: columns, n: n, tolerance: 1e-5,
                                    "\(type) \(rows)x\(columns) n=\(n) x16 \(name)")
                    }
                }
            }
        }
    }

    func testKernelsAreExactWhenTheActivationsNeedNoRounding() {
        for type in Self.types {
            let (rows, columns) = shapes(type)[0]
            let blocks = randomBlocks(type, rows: rows, columns: columns, seed: 7)
            let w = dequantized(type, blocks, rows: rows, columns: columns)
            let n = 3
            var rng = SplitMix(seed: 11)
            var x = (0..<(n * columns)).map { _ in Float(Int(rng.next() % 255) - 127) }
            for b in stride(from: 0, to: x.count, by: 32) { x[b + Int(rng.next() % 32)] = 127 }
            for (name, kernel) in [("dispatched", tc_quant_matmul), ("portable", tc_quant_matmul_portable)] {
                let y = run(kernel, type, blocks, rows: rows, columns: columns, x: x, n: n)
                assertClose(y, x: x, w: w, rows: rows, columns: columns, n: n, tolerance: 1e-5, "\(type) exact \(name)")
            }
        }
    }

    func testKernelsRejectUnsupportedTypesAndPartialBlocks() {
        var y: Float = 0
        let blocks = [UInt8](repeating: 0, count: 64)
        let activations = UnsafeMutableRawPointer.allocate(byteCount: tc_quant_activation_bytes(1, 64), alignment: 64)
        defer { activations.deallocate() }
        blocks.withUnsafeBytes { w in
            XCTAssertEqual(tc_quant_matmul(GGMLType.f16.rawValue, w.baseAddress!, 2, 0, 1, 32, activations, 1, &y, 1, 0),
                           Int32(TC_QMATMUL_UNSUPPORTED_TYPE))
            XCTAssertEqual(tc_quant_matmul(GGMLType.q4_K.rawValue, w.baseAddress!, 144, 0, 1, 32, activations, 1, &y, 1, 0),
                           Int32(TC_QMATMUL_PARTIAL_BLOCK))
        }
    }

    /// QuantizedMatrix streams blocks for up to 16 rows (x16 layout where it applies, L1 tiles
    /// otherwise) and expands panels above; every path is exact, and rows read back unchanged.
    func testQuantizedMatrixProductsAreExactForFewAndManyRowsAndAccumulate() throws {
        for (type, rows, interleave) in [(GGMLType.q4_1, 48, true), (.q4_1, 45, true), (.q8_0, 32, true), (.q4_0, 64, true),
                                         (.q4_1, 48, false), (.q6_K, 17, true)] {
            let columns = type.blockSize == 32 ? 96 : 256
            try checkQuantizedMatrix(type, rows: rows, columns: columns, interleave: interleave)
        }
    }

    func quantizedMatrix(_ type: GGMLType, rows: Int, columns: Int, seed: UInt64) throws -> QuantizedMatrix {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tc-qmm-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = GGUFWriter()
        try writer.addRawTensor("w", dimensions: [columns, rows], type: type,
                                data: randomBlocks(type, rows: rows, columns: columns, seed: seed))
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        return try QuantizedMatrix(file: file, tensor: try XCTUnwrap(file.tensorInfo(named: "w")))
    }

    /// Layers sharing an input (q, k, v) run as one pass in inference, with the same results
    /// as one by one; training inputs (requiring gradients) and adapters keep the per-layer path.
    func testFusedInferenceEqualsTheLayersOneByOne() throws {
        try XCTSkipUnless(tc_x16_is_fast() != 0, "the x16 layout (and so fusion) is used only on CPUs with AVX-512 or AVX2+FMA+F16C")
        let layers = try [(GGMLType.q4_1, 64), (.q4_1, 32), (.q8_0, 48)].enumerated().map { i, spec in
            Linear(name: "l\(i)", weight: try quantizedMatrix(spec.0, rows: spec.1, columns: 96, seed: UInt64(i)))
        }
        let x = Variable(try Tensor(shape: [3, 96], scalars: randomActivations(count: 3 * 96, seed: 5)))
        let fused = try XCTUnwrap(Linear.fusedInference(layers, x))
        for (layer, y) in zip(layers, fused) {
            let expected = try layer(Tape(recording: false), x)
            XCTAssertEqual(y.shape, expected.shape)
            for i in 0..<y.value.count { XCTAssertEqual(y.value[flat: i], expected.value[flat: i], accuracy: 1e-5) }
        }
        XCTAssertNil(Linear.fusedInference(layers, Variable(x.value, requiresGrad: true)))
        let dense = Linear(name: "dense", weight: try DenseMatrix(Tensor(zeros: [16, 96])))
        XCTAssertNil(Linear.fusedInference(layers + [dense], x))
    }

    func checkQuantizedMatrix(_ type: GGMLType, rows: Int, columns: Int, interleave: Bool) throws {
        let blocks = randomBlocks(type, rows: rows, columns: columns, seed: 3)
        let w = dequantized(type, blocks, rows: rows, columns: columns)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tc-qmm-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = GGUFWriter()
        try writer.addRawTensor("w", dimensions: [columns, rows], type: type, data: blocks)
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        let matrix = try QuantizedMatrix(file: file, tensor: try XCTUnwrap(file.tensorInfo(named: "w")), interleave: interleave)
        XCTAssertEqual(matrix.isInterleaved, interleave && tc_x16_is_fast() != 0 && rows % 16 == 0 && type.blockSize == 32,
                       "\(type) \(rows) rows")
        var row = [Float](repeating: 0, count: columns)
        for r in [0, rows / 2, rows - 1] {
            matrix.row(r, into: &row)
            XCTAssertEqual(row, Array(w[(r * columns)..<((r + 1) * columns)]), "\(type) row \(r)")
        }
        for n in [1, 3, 9, 16, 17] {
            let x = randomActivations(count: n * columns, seed: UInt64(100 + n))
            var y = [Float](repeating: 1, count: n * rows)
            matrix.multiply(x, count: n, into: &y, accumulate: true)
            let minusOne = y.map { $0 - 1 }
            assertClose(minusOne, x: x, w: w, rows: rows, columns: columns, n: n, tolerance: 1e-5,
                        "\(type) \(rows)x\(columns) interleave \(interleave) n=\(n)")
        }
    }
}

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
