import LoRA
import XCTest

final class LoRABuildsTests: XCTestCase {
    func testModuleLinks() {}
}
