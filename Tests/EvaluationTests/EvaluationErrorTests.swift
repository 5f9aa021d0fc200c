import Evaluation
import XCTest

final class EvaluationErrorTests: XCTestCase {
    func testSuiteErrorsNameTheFile() {
        XCTAssertEqual("\(EvaluationError.invalidSuite(file: "configs/eval/x.yaml", message: "question 'q1' has no paraphrases"))",
                       "configs/eval/x.yaml: question 'q1' has no paraphrases")
    }
}
