import Training
import XCTest

final class TrainingBuildsTests: XCTestCase {
    func testModuleLinks() {}
}
