import XCTest

final class ModelFormatsFixturesTests: XCTestCase {
    func testFixturesFolderIsBundled() throws {
        XCTAssertNotNil(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    }
}
