import CKernels
import Tensors
import XCTest

/// The bfloat16 frozen-weight path: rounding, packing and both products against a Double
/// reference computed from the same bf16-rounded operands.
final class BF16MatrixTests: XCTestCase {
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed | 1
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
    }

    func rounded(_ x: Float) -> Double { Double(tc_bf16_to_float(tc_bf16_from_float(x))) }

    func testRoundingIsToNearestEven() {
        XCTAssertEqual(tc_bf16_from_float(1), 0x3F80)
        XCTAssertEqual(tc_bf16_from_float(1 + 1.0 / 256), 0x3F80, "a tie rounds to the even neighbour")
        XCTAssertEqual(tc_bf16_from_float(1 + 3.0 / 256), 0x3F82, "a tie rounds to the even neighbour")
        XCTAssertEqual(tc_bf16_from_float(1 + 1.0 / 128 + 1.0 / 1024), 0x3F81)
        XCTAssertTrue(tc_bf16_to_float(tc_bf16_from_float(.nan)).isNaN)
    }

    func testProductsMatchADoubleReferenceOnOddShapes() throws {
        try XCTSkipUnless(BF16Matrix.isSupported, "this CPU has no AVX512_BF16")
        let (out, inF, n) = (37, 13, 7)
        let w = try Tensor(shape: [out, inF], scalars: values(out * inF, seed: 1))
        let matrix = try BF16Matrix(DenseMatrix(w))
        let x = values(n * inF, seed: 2), dy = values(n * out, seed: 3)
        var y = [Float](repeating: 0.5, count: n * out)
        var dx = [Float](repeating: 0.25, count: n * inF)
        x.withUnsafeBufferPointer { matrix.multiply($0.baseAddress!, count: n, into: &y, accumulate: false) }
        dy.withUnsafeBufferPointer { matrix.multiplyTransposed($0.baseAddress!, count: n, accumulateInto: &dx) }
        for i in 0..<n {
            for j in 0..<out {
                var ref = 0.0
                for k in 0..<inF { ref += rounded(x[i * inF + k]) * rounded(w[j, k]) }
                XCTAssertEqual(Double(y[i * out + j]), ref, accuracy: 1e-5, "y[\(i), \(j)]")
            }
            for k in 0..<inF {
                var ref = 0.25
                for j in 0..<out { ref += rounded(dy[i * out + j]) * rounded(w[j, k]) }
                XCTAssertEqual(Double(dx[i * inF + k]), ref, accuracy: 1e-5, "dx[\(i), \(k)]")
            }
        }
    }

    func testRowsReadBackAsTheRoundedWeights() throws {
        try XCTSkipUnless(BF16Matrix.isSupported, "this CPU has no AVX512_BF16")
        let w = try Tensor(shape: [3, 5], scalars: values(15, seed: 4))
        let matrix = try BF16Matrix(DenseMatrix(w))
        var row = [Float](repeating: 0, count: 5)
        matrix.row(2, into: &row)
        for c in 0..<5 { XCTAssertEqual(Double(row[c]), rounded(w[2, c])) }
        XCTAssertEqual(matrix.byteCount, 2 * 2 * 16 * 3 + 2 * 2 * 16 * 2 * 1)
    }

    func testAMXRequestExplainsARefusal() {
        var reason = [CChar](repeating: 0, count: 160)
        let granted = tc_amx_request(&reason, reason.count)
        if !(CPUFeatures.current.amxTile && CPUFeatures.current.amxBF16) {
            XCTAssertEqual(granted, 0)
            XCTAssertTrue(String(cString: reason).contains("AMX"), String(cString: reason))
        } else if granted == 0 {
            XCTAssertFalse(String(cString: reason).isEmpty)
        }
    }
}
