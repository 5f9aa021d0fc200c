import Foundation
import ModelFormats
import Training
import XCTest

/// YAML is composed only within limits, so hostile configs fail with an error instead of
/// overflowing the stack or expanding without end (issue 16, item 3).
final class BoundedYAMLTests: XCTestCase {
    func testFlowCollectionsNestedThousandsDeepAreRefused() {
        let text = "a: " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        XCTAssertThrowsError(try BoundedYAML.compose(text)) {
            XCTAssertEqual($0 as? BoundedYAML.LimitError, .tooDeep(line: 1))
        }
    }

    func testCompactSequencesNestedThousandsDeepAreRefused() {
        let text = "training:\n  x: 1\nlist:\n" + String(repeating: "- ", count: 5000) + "x\n"
        XCTAssertThrowsError(try BoundedYAML.compose(text)) {
            XCTAssertEqual($0 as? BoundedYAML.LimitError, .tooDeep(line: 4))
        }
    }

    func testIndentedMappingsDeeperThanTheLimitAreRefusedAtTheirLine() {
        let depth = BoundedYAML.maximumDepth + 1
        let text = (0..<depth).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1\n"
        XCTAssertThrowsError(try BoundedYAML.compose(text)) {
            XCTAssertEqual($0 as? BoundedYAML.LimitError, .tooDeep(line: depth))
        }
    }

    func testIndentedMappingsWithCarriageReturnLineEndsAreRefused() {
        let text = (0..<5000).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\r") + " 1\r"
        XCTAssertThrowsError(try BoundedYAML.compose(text)) {
            XCTAssertEqual($0 as? BoundedYAML.LimitError, .tooDeep(line: BoundedYAML.maximumDepth + 1))
        }
    }

    func testExplicitKeysNestedThousandsDeepAreRefused() {
        let text = String(repeating: "? ", count: 5000) + "x\n"
        XCTAssertThrowsError(try BoundedYAML.compose(text)) {
            XCTAssertEqual($0 as? BoundedYAML.LimitError, .tooDeep(line: 1))
        }
    }

    func testAnApostropheInsideAPlainScalarDoesNotHideTheNestingAfterIt() {
        let text = "a: x-'y\nb: " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "\n"
        XCTAssertThrowsError(try BoundedYAML.compose(text)) {
            XCTAssertEqual($0 as? BoundedYAML.LimitError, .tooDeep(line: 2))
        }
    }

    func testTaggedCollectionsNestedThousandsDeepAreRefused() {
        let text = "a: " + String(repeating: "!!seq [", count: 5000) + String(repeating: "]", count: 5000) + "\n"
        XCTAssertThrowsError(try BoundedYAML.compose(text)) {
            XCTAssertEqual($0 as? BoundedYAML.LimitError, .tooDeep(line: 1))
        }
    }

    func testASyntaxErrorAfterShallowNestingIsReportedAsInvalid() {
        XCTAssertThrowsError(try BoundedYAML.compose("a: [1, 2\nb: }\n")) {
            guard case .invalid = $0 as? BoundedYAML.LimitError else { return XCTFail("\($0)") }
        }
    }

    func testNestingJustWithinTheLimitIsComposed() throws {
        let depth = BoundedYAML.maximumDepth - 1
        let text = String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth)
        XCTAssertNotNil(try BoundedYAML.compose(text))
    }

    func testAliasesExpandingPastTheNodeLimitAreRefused() {
        var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for i in 1...7 { lines.append("a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]") }
        XCTAssertThrowsError(try BoundedYAML.compose(lines.joined(separator: "\n"))) {
            XCTAssertEqual($0 as? BoundedYAML.LimitError, .tooManyNodes)
        }
    }

    func testBlockScalarBodiesAndQuotedBracketsDoNotCountAsNesting() throws {
        let body = (0..<100).map { "    " + String(repeating: " ", count: $0) + "[[[ {{ line \($0)" }.joined(separator: "\n")
        let text = "prompt: |\n" + body + "\nother: \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"\n# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"
        XCTAssertNotNil(try BoundedYAML.compose(text))
    }

    func testEveryShippedConfigAndSuiteIsWithinTheLimits() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let files = FileManager.default.enumerator(atPath: root.appendingPathComponent("configs").path)?
            .compactMap { $0 as? String }.filter { $0.hasSuffix(".yaml") } ?? []
        XCTAssertGreaterThan(files.count, 10)
        for file in files {
            let text = try String(contentsOf: root.appendingPathComponent("configs").appendingPathComponent(file), encoding: .utf8)
            XCTAssertNoThrow(try BoundedYAML.compose(text), file)
        }
    }

    func testADeeplyNestedConfigIsAConfigErrorNamingTheFileAndLine() {
        let text = "run:\n  name: x\nlist:\n" + String(repeating: "- ", count: 5000) + "x\n"
        XCTAssertThrowsError(try RunConfig.parse(yaml: text, source: "deep.yaml")) {
            XCTAssertEqual("\($0)", "deep.yaml: not valid YAML: line 4: nested more than \(BoundedYAML.maximumDepth) levels deep")
        }
    }

    func testErrorTextIsShortAndEscapesControlCharacters() {
        let raw = "bad\u{0}key\nnext" + String(repeating: "x", count: 5_000_000)
        let shown = ErrorText.bounded(raw)
        XCTAssertTrue(shown.hasPrefix("bad\\x00key\\nnext"))
        XCTAssertTrue(shown.hasSuffix("... (4999716 more characters)"), shown)
        XCTAssertLessThan(shown.count, 400)
    }
}
