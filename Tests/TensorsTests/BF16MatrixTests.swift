import CKernels
import Tensors
import XCTest

/// The bfloat16 frozen-weight path: rounding, packing and both products of every kernel
/// against a Double reference computed from the same bf16-rounded operands, and the kernels
/// against each other. A kernel the CPU cannot run is skipped, saying so.
final class BF16MatrixTests: XCTestCase {
    func values(_ count: Int, seed: UInt64) -> [Float] { pseudoRandomValues(count, seed: seed) }

    func rounded(_ x: Float) -> Double { Double(tc_bf16_to_float(tc_bf16_from_float(x))) }

    func testRoundingIsToNearestEven() {
        XCTAssertEqual(tc_bf16_from_float(1), 0x3F80)
        XCTAssertEqual(tc_bf16_from_float(1 + 1.0 / 256), 0x3F80, "a tie rounds to the even neighbour")
        XCTAssertEqual(tc_bf16_from_float(1 + 3.0 / 256), 0x3F82, "a tie rounds to the even neighbour")
        XCTAssertEqual(tc_bf16_from_float(1 + 1.0 / 128 + 1.0 / 1024), 0x3F81)
        XCTAssertTrue(tc_bf16_to_float(tc_bf16_from_float(.nan)).isNaN)
    }

    /// y = x W^T and dx += dy W with `kernel`, on shapes that leave partial panels and tiles.
    func products(_ kernel: BF16Kernel, out: Int = 37, inF: Int = 13, n: Int = 7) throws -> (w: Tensor, x: [Float], dy: [Float], y: [Float], dx: [Float]) {
        let w = try Tensor(shape: [out, inF], scalars: values(out * inF, seed: 1))
        let matrix = try BF16Matrix(DenseMatrix(w), kernel: kernel)
        XCTAssertEqual(matrix.kernel, kernel)
        let x = values(n * inF, seed: 2), dy = values(n * out, seed: 3)
        var y = [Float](repeating: 0.5, count: n * out)
        var dx = [Float](repeating: 0.25, count: n * inF)
        x.withUnsafeBufferPointer { matrix.multiply($0.baseAddress!, count: n, into: &y, accumulate: false) }
        dy.withUnsafeBufferPointer { matrix.multiplyTransposed($0.baseAddress!, count: n, accumulateInto: &dx) }
        return (w, x, dy, y, dx)
    }

    func checkProductsMatchADoubleReference(_ kernel: BF16Kernel) throws {
        let (out, inF, n) = (37, 13, 7)
        let (w, x, dy, y, dx) = try products(kernel, out: out, inF: inF, n: n)
        for i in 0..<n {
            for j in 0..<out {
                var ref = 0.0
                for k in 0..<inF { ref += rounded(x[i * inF + k]) * rounded(w[j, k]) }
                XCTAssertEqual(Double(y[i * out + j]), ref, accuracy: 1e-5, "\(kernel) y[\(i), \(j)]")
            }
            for k in 0..<inF {
                var ref = 0.25
                for j in 0..<out { ref += rounded(dy[i * out + j]) * rounded(w[j, k]) }
                XCTAssertEqual(Double(dx[i * inF + k]), ref, accuracy: 1e-5, "\(kernel) dx[\(i), \(k)]")
            }
        }
    }

    func testPortableKernelProductsMatchADoubleReferenceOnOddShapes() throws {
        try checkProductsMatchADoubleReference(.portable)
    }

    func testAVX2KernelProductsMatchADoubleReferenceOnOddShapes() throws {
        try XCTSkipUnless(BF16Kernel.avx2.isSupported, "this CPU has no AVX2+FMA, so the AVX2 bf16 kernel cannot run here")
        try checkProductsMatchADoubleReference(.avx2)
    }

    func testAVX512BF16KernelProductsMatchADoubleReferenceOnOddShapes() throws {
        try XCTSkipUnless(BF16Kernel.avx512BF16.isSupported, "this CPU has no AVX512_BF16, so the vdpbf16ps kernel cannot run here")
        try checkProductsMatchADoubleReference(.avx512BF16)
    }

    /// The AVX2 and portable kernels add the same products in the same order, so their results
    /// are bitwise equal. vdpbf16ps is defined to do the same (odd product first, each addition
    /// rounded to nearest even), but it flushes denormals and its hardware cannot be checked
    /// everywhere, so against it the bound is a few units in the last place of the summed
    /// magnitudes, and the test prints how many results were bitwise equal.
    func checkKernelAgreesWithPortable(_ kernel: BF16Kernel, bitwise: Bool) throws {
        var equal = 0, total = 0
        for (out, inF, n) in [(37, 13, 7), (64, 96, 13), (16, 2, 1)] {
            let fast = try products(kernel, out: out, inF: inF, n: n), plain = try products(.portable, out: out, inF: inF, n: n)
            for (name, a, b, k) in [("forward", fast.y, plain.y, inF), ("input gradient", fast.dx, plain.dx, out)] {
                for (x, y) in zip(a, b) {
                    total += 1
                    if x.bitPattern == y.bitPattern { equal += 1; continue }
                    XCTAssertFalse(bitwise, "\(kernel) \(name) [\(out), \(inF)] x \(n): \(x) != \(y)")
                    // |products| <= 1 here, so their sum is at most k (plus the accumulated 0.25 or 0.5)
                    XCTAssertEqual(x, y, accuracy: Float(k + 1) * 0x1p-21, "\(kernel) \(name) [\(out), \(inF)] x \(n)")
                }
            }
        }
        print("\(kernel) against portable C: \(equal) of \(total) results bitwise equal")
    }

    func testAVX2KernelEqualsThePortableKernelBitwise() throws {
        try XCTSkipUnless(BF16Kernel.avx2.isSupported, "this CPU has no AVX2+FMA, so the AVX2 bf16 kernel cannot run here")
        try checkKernelAgreesWithPortable(.avx2, bitwise: true)
    }

    func testAVX512BF16KernelAgreesWithThePortableKernel() throws {
        try XCTSkipUnless(BF16Kernel.avx512BF16.isSupported, "this CPU has no AVX512_BF16, so the vdpbf16ps kernel cannot run here")
        try checkKernelAgreesWithPortable(.avx512BF16, bitwise: false)
    }

    func testBandsOfRowsMatchTheWholeProduct() throws {
        let (out, inF, n) = (48, 20, 5)
        let w = try Tensor(shape: [out, inF], scalars: values(out * inF, seed: 5))
        let matrix = try BF16Matrix(DenseMatrix(w))
        let x = values(n * inF, seed: 6)
        var whole = [Float](repeating: 0, count: n * out), band = [Float](repeating: 0, count: n * 16)
        x.withUnsafeBufferPointer { matrix.multiply($0.baseAddress!, count: n, into: &whole, accumulate: false) }
        x.withUnsafeBufferPointer { matrix.multiply($0.baseAddress!, count: n, rows: 16..<32, into: &band) }
        for i in 0..<n { XCTAssertEqual(Array(band[(i * 16)..<(i * 16 + 16)]), Array(whole[(i * out + 16)..<(i * out + 32)])) }
    }

    func testKernelChoiceFollowsTheFeaturesTheToolkitSees() throws {
        var plain = CPUFeatures.detected
        plain.avx2 = false; plain.avx512bf16 = false
        XCTAssertEqual(BF16Kernel.best(for: plain), .portable, "hidden AVX2 and AVX512_BF16 leave the portable kernel")
        var pretended = try CPUFeatures.detected.applying("+avx512,+avx512_bf16")
        pretended.avx2 = false
        XCTAssertEqual(BF16Kernel.best(for: pretended) == .avx512BF16, BF16Kernel.avx512BF16.isSupported,
                       "an added AVX512_BF16 is not trusted unless the CPU has it")
    }

    func testRowsReadBackAsTheRoundedWeights() throws {
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
