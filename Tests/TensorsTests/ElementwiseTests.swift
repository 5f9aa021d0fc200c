import Tensors
import XCTest

final class ElementwiseTests: XCTestCase {
    func testAddRefusesToBroadcast() {
        XCTAssertThrowsError(try Tensor(zeros: [2, 3]).adding(Tensor(zeros: [3]))) { error in
            XCTAssertEqual(error as? TensorError, .shapeMismatch(op: "add", lhs: [2, 3], rhs: [3]))
        }
        XCTAssertThrowsError(try Tensor(zeros: [2, 3]).multiplying(Tensor(zeros: [3, 2])))
    }

    func testElementwiseOpsAreCorrectOnTheParallelPath() throws {
        let n = 200_003  // above the parallel threshold and not a multiple of any chunk size
        let a = try Tensor(shape: [n], scalars: (0..<n).map { Float($0 % 97) })
        let b = try Tensor(shape: [n], scalars: (0..<n).map { Float($0 % 13) - 6 })
        let sum = try a.adding(b), prod = try a.multiplying(b), scaled = a.scaled(by: -2)
        for i in stride(from: 0, to: n, by: 9973) + [n - 1] {
            XCTAssertEqual(sum[flat: i], a[flat: i] + b[flat: i])
            XCTAssertEqual(prod[flat: i], a[flat: i] * b[flat: i])
            XCTAssertEqual(scaled[flat: i], -2 * a[flat: i])
        }
        try a.addScaled(b, alpha: 0.5)
        XCTAssertEqual(a[flat: n - 1], Float((n - 1) % 97) + 0.5 * (Float((n - 1) % 13) - 6))
    }

    func testSumOfManySmallValuesKeepsPrecision() {
        let t = Tensor(shape: [1_000_000], repeating: 0.1)
        XCTAssertEqual(t.sum(), 100_000, accuracy: 0.5)
    }

    func testSoftmaxRowsArePositiveAndSumToOne() throws {
        let x = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 1000, 1000, -1000])
        let p = x.softmax()
        XCTAssertEqual(p[0, 0] + p[0, 1] + p[0, 2], 1, accuracy: 1e-6)
        XCTAssertEqual(p[0, 2], exp(3) / (exp(1) + exp(2) + exp(3)), accuracy: 1e-6)
        XCTAssertEqual(p[1, 0], 0.5, accuracy: 1e-6)
        XCTAssertEqual(p[1, 2], 0)
        XCTAssertEqual(x.maximum(), 1000)
    }

}
