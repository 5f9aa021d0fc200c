import Tensors
import XCTest

final class GEMMTests: XCTestCase {
    /// The kernels OpenBLAS chose in this process compute the same products as plain loops, on
    /// odd shapes, every transpose combination, alpha/beta and padded leading dimensions.
    func testSgemmMatchesReferenceOnOddShapesAndAllTransposes() throws {
        let checked = try GEMM.verify(tolerance: 1e-4)
        XCTAssertEqual(checked, 24)
    }

    func testMatmulOfTensorsWithTransposedOperand() throws {
        let a = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let w = try Tensor(shape: [2, 3], scalars: [1, 0, -1, 2, 1, 0])
        let y = try a.matmul(w, transposeOther: true)  // [2, 3] x [3, 2]
        XCTAssertEqual(y.shape, [2, 2])
        XCTAssertEqual(y.scalars, [-2, 4, -2, 13])
    }

    func testMatmulWithMismatchedInnerDimensionFailsNamingShapes() {
        let a = Tensor(zeros: [2, 3]), b = Tensor(zeros: [4, 2])
        XCTAssertThrowsError(try a.matmul(b)) { error in
            XCTAssertEqual(error as? TensorError, .shapeMismatch(op: "matmul", lhs: [2, 3], rhs: [4, 2]))
        }
    }

    func testBatchedMatmulMultipliesEachBatchIndependently() throws {
        let a = try Tensor(shape: [2, 1, 2], scalars: [1, 2, 3, 4])
        let b = try Tensor(shape: [2, 2, 1], scalars: [1, 1, 2, -1])
        let y = try a.batchedMatmul(b)
        XCTAssertEqual(y.shape, [2, 1, 1])
        XCTAssertEqual(y.scalars, [3, 2])
        XCTAssertThrowsError(try a.batchedMatmul(Tensor(zeros: [3, 2, 1])))
    }
}
