import CKernels
import Tensors
import XCTest

/// Frozen-weight products through oneDNN, against OpenBLAS (Float32) and against a Double
/// reference of the bf16-rounded operands (bf16, where oneDNN implements it on this CPU).
final class OneDNNMatrixTests: XCTestCase {
    func values(_ count: Int, seed: UInt64) -> [Float] { pseudoRandomValues(count, seed: seed) }

    func requireBF16() throws {
        if case .failure(let reason) = OneDNNPrecision.bf16.implementation {
            throw XCTSkip("oneDNN has no bf16 matmul on this CPU: \(reason)")
        }
    }

    /// Forward and input-gradient products of `matrix` and of the same weights as a DenseMatrix.
    func compare(_ matrix: FrozenMatrix, _ dense: DenseMatrix, n: Int, accuracy: Float, bf16: Bool) {
        let x = values(n * dense.columns, seed: 2), dy = values(n * dense.rows, seed: 3)
        var y = [Float](repeating: 0.5, count: n * dense.rows), reference = y
        var dx = [Float](repeating: 0.25, count: n * dense.columns), referenceDx = dx
        let round = { (v: [Float]) in bf16 ? v.map { tc_bf16_to_float(tc_bf16_from_float($0)) } : v }
        let rx = round(x), rdy = round(dy)
        let rw = try! DenseMatrix(Tensor(shape: [dense.rows, dense.columns], scalars: round(dense.tensor.scalars)))
        x.withUnsafeBufferPointer { matrix.multiply($0.baseAddress!, count: n, into: &y, accumulate: true) }
        rx.withUnsafeBufferPointer { rw.multiply($0.baseAddress!, count: n, into: &reference, accumulate: true) }
        dy.withUnsafeBufferPointer { matrix.multiplyTransposed($0.baseAddress!, count: n, accumulateInto: &dx) }
        rdy.withUnsafeBufferPointer { rw.multiplyTransposed($0.baseAddress!, count: n, accumulateInto: &referenceDx) }
        for i in y.indices { XCTAssertEqual(y[i], reference[i], accuracy: accuracy, "y[\(i)]") }
        for i in dx.indices { XCTAssertEqual(dx[i], referenceDx[i], accuracy: accuracy, "dx[\(i)]") }
    }

    func testFloat32ProductsEqualSgemmOnOddShapes() throws {
        let dense = try DenseMatrix(Tensor(shape: [37, 13], scalars: values(37 * 13, seed: 1)))
        let matrix = try OneDNNMatrix(dense, precision: .float32)
        for n in [1, 7, 64] { compare(matrix, dense, n: n, accuracy: 1e-5, bf16: false) }
        XCTAssertFalse(matrix.implementation.isEmpty)
    }

    /// bf16 products stage their activations through a oneDNN reorder; staging Float32
    /// activations the same way runs that code on every CPU.
    func testStagedFloat32ProductsEqualSgemm() throws {
        let dense = try DenseMatrix(Tensor(shape: [40, 24], scalars: values(40 * 24, seed: 1)))
        let matrix = try OneDNNMatrix(dense, precision: .float32, blockRows: 16, stagesActivations: true)
        for n in [1, 7, 64] { compare(matrix, dense, n: n, accuracy: 1e-5, bf16: false) }
        let x = values(3 * 24, seed: 9)
        var band = [Float](repeating: 0, count: 3 * 24), reference = band
        x.withUnsafeBufferPointer { matrix.multiply($0.baseAddress!, count: 3, rows: 16..<40, into: &band) }
        x.withUnsafeBufferPointer { dense.multiply($0.baseAddress!, count: 3, rows: 16..<40, into: &reference) }
        for i in band.indices { XCTAssertEqual(band[i], reference[i], accuracy: 1e-5) }
        let dy = values(3 * 24, seed: 10)
        var dx = [Float](repeating: 0, count: 3 * 24), referenceDx = dx
        dy.withUnsafeBufferPointer { matrix.multiplyTransposed($0.baseAddress!, count: 3, rows: 16..<40, accumulateInto: &dx) }
        dy.withUnsafeBufferPointer { dense.multiplyTransposed($0.baseAddress!, count: 3, rows: 16..<40, accumulateInto: &referenceDx) }
        for i in dx.indices { XCTAssertEqual(dx[i], referenceDx[i], accuracy: 1e-5) }
    }

    func testBF16ProductsMatchTheRoundedOperandsProducts() throws {
        try requireBF16()
        let dense = try DenseMatrix(Tensor(shape: [96, 64], scalars: values(96 * 64, seed: 1)))
        let matrix = try OneDNNMatrix(dense, precision: .bf16)
        for n in [1, 7, 64] { compare(matrix, dense, n: n, accuracy: 1e-4, bf16: true) }
        print("oneDNN bf16 implementation: \(matrix.implementation)")
    }

    func testBandsOfBlocksEqualTheWholeProduct() throws {
        let (out, inF, n) = (40, 24, 5)
        let dense = try DenseMatrix(Tensor(shape: [out, inF], scalars: values(out * inF, seed: 4)))
        let matrix = try OneDNNMatrix(dense, precision: .float32, blockRows: 16)
        let x = values(n * inF, seed: 6), dy = values(n * 24, seed: 7)
        var whole = [Float](repeating: 0, count: n * out), band = [Float](repeating: 0, count: n * 24)
        x.withUnsafeBufferPointer { matrix.multiply($0.baseAddress!, count: n, into: &whole, accumulate: false) }
        x.withUnsafeBufferPointer { matrix.multiply($0.baseAddress!, count: n, rows: 16..<40, into: &band) }
        for i in 0..<n { XCTAssertEqual(Array(band[(i * 24)..<(i * 24 + 24)]), Array(whole[(i * out + 16)..<(i * out + 40)])) }
        var dx = [Float](repeating: 0, count: n * inF), reference = dx
        dy.withUnsafeBufferPointer { matrix.multiplyTransposed($0.baseAddress!, count: n, rows: 16..<40, accumulateInto: &dx) }
        dy.withUnsafeBufferPointer { dense.multiplyTransposed($0.baseAddress!, count: n, rows: 16..<40, accumulateInto: &reference) }
        for i in dx.indices { XCTAssertEqual(dx[i], reference[i], accuracy: 1e-5, "dx[\(i)]") }
    }

    func testRowsReadBackFromThePackedLayout() throws {
        let dense = try DenseMatrix(Tensor(shape: [20, 9], scalars: values(180, seed: 8)))
        let matrix = try OneDNNMatrix(dense, precision: .float32, blockRows: 16)
        var row = [Float](repeating: 0, count: 9)
        matrix.row(17, into: &row)
        XCTAssertEqual(row, Array(dense.tensor.scalars[(17 * 9)..<(18 * 9)]))
    }
}

/// A weight held twice, each form for the products it is fast at.
final class PrefillDecodeMatrixTests: XCTestCase {
    func matrix(_ value: Float, rows: Int = 3, columns: Int = 4) throws -> DenseMatrix {
        try DenseMatrix(Tensor(shape: [rows, columns], repeating: value))
    }

    func product(_ m: FrozenMatrix, rows n: Int) -> Float {
        let x = [Float](repeating: 1, count: n * m.columns)
        var y = [Float](repeating: 0, count: n * m.rows)
        x.withUnsafeBufferPointer { m.multiply($0.baseAddress!, count: n, into: &y, accumulate: false) }
        return y[0]
    }

    func testFewRowsRunOnTheDecodeFormAndManyOnThePrefillForm() throws {
        let pair = PrefillDecodeMatrix(decode: try matrix(1), prefill: try matrix(2), prefillRows: 32)
        XCTAssertEqual(product(pair, rows: 1), 4, "a decoding step: the decode form")
        XCTAssertEqual(product(pair, rows: 31), 4)
        XCTAssertEqual(product(pair, rows: 32), 8, "a prefill: the prefill form")
        XCTAssertEqual(pair.byteCount, 2 * 3 * 4 * MemoryLayout<Float>.stride)
    }

    func testInputGradientsAndRowsComeFromTheDecodeForm() throws {
        let pair = PrefillDecodeMatrix(decode: try matrix(1), prefill: try matrix(2))
        let dy = [Float](repeating: 1, count: 64 * 3)
        var dx = [Float](repeating: 0, count: 64 * 4)
        dy.withUnsafeBufferPointer { pair.multiplyTransposed($0.baseAddress!, count: 64, accumulateInto: &dx) }
        XCTAssertEqual(dx[0], 3)
        var row = [Float](repeating: 0, count: 4)
        pair.row(1, into: &row)
        XCTAssertEqual(row, [1, 1, 1, 1])
    }

    func testAForwardOnlyOneDNNMatrixMultipliesAndUnpacksRowsLikeTheFullOne() throws {
        let values = pseudoRandomValues(5 * 7, seed: 4)
        let dense = try DenseMatrix(Tensor(shape: [5, 7], scalars: values))
        let forwardOnly = try OneDNNMatrix(dense, precision: .float32, forwardOnly: true)
        XCTAssertLessThan(forwardOnly.byteCount, try OneDNNMatrix(dense, precision: .float32).byteCount)
        let x = pseudoRandomValues(3 * 7, seed: 5)
        var y = [Float](repeating: 0, count: 3 * 5), reference = y
        x.withUnsafeBufferPointer {
            forwardOnly.multiply($0.baseAddress!, count: 3, into: &y, accumulate: false)
            dense.multiply($0.baseAddress!, count: 3, into: &reference, accumulate: false)
        }
        for i in y.indices { XCTAssertEqual(y[i], reference[i], accuracy: 1e-5) }
        var row = [Float](repeating: 0, count: 7)
        forwardOnly.row(3, into: &row)
        XCTAssertEqual(row, Array(values[21..<28]))
    }
}
