import Tensors
import XCTest

final class TensorTests: XCTestCase {
    func testShapeCountsElementsAndPrintsDims() {
        let s: Shape = [2, 3, 4]
        XCTAssertEqual(s.count, 24)
        XCTAssertEqual(s.rows, 6)
        XCTAssertEqual(s.description, "[2, 3, 4]")
        XCTAssertEqual(Shape([]).count, 1)
    }

    func testInitRejectsWrongValueCountNamingTheShape() {
        XCTAssertThrowsError(try Tensor(shape: [2, 2], scalars: [1, 2, 3])) { error in
            XCTAssertTrue("\(error)".contains("[2, 2]"), "\(error)")
        }
    }

    func testReshapeIsAViewOfTheSameStorage() throws {
        let t = try Tensor(shape: [2, 3], scalars: [0, 1, 2, 3, 4, 5])
        let r = try t.reshaped([3, 2])
        r[2, 1] = 42
        XCTAssertEqual(t[1, 2], 42)
    }

    func testReshapeToADifferentCountFailsNamingBothShapes() throws {
        let t = Tensor(zeros: [2, 3])
        XCTAssertThrowsError(try t.reshaped([4, 2])) { error in
            XCTAssertEqual(error as? TensorError, .shapeMismatch(op: "reshape", lhs: [2, 3], rhs: [4, 2]))
            XCTAssertEqual("\(error)", "reshape: shape mismatch between [2, 3] and [4, 2]")
        }
    }

    func testRowsViewSelectsARangeOfTheFirstAxis() throws {
        let t = try Tensor(shape: [3, 2], scalars: [0, 1, 2, 3, 4, 5])
        let mid = try t.rows(1..<3)
        XCTAssertEqual(mid.shape, [2, 2])
        XCTAssertEqual(mid.scalars, [2, 3, 4, 5])
        XCTAssertThrowsError(try t.rows(2..<4))
    }

    func testCopyDoesNotShareStorage() throws {
        let t = try Tensor(shape: [2], scalars: [1, 2])
        let c = t.copy()
        c[flat: 0] = 9
        XCTAssertEqual(t[flat: 0], 1)
    }
}
