import Foundation
import ModelFormats
import XCTest

/// Input files are read only when they are regular files: a FIFO named as a model, data file or
/// config would otherwise block `open()` for ever (issue 29, item 3).
final class InputFileTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tc-inputfile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    private func fifo() throws -> String {
        let path = "\(dir)/pipe"
        guard mkfifo(path, 0o600) == 0 else { throw XCTSkip("mkfifo refused here: \(String(cString: strerror(errno)))") }
        return path
    }

    func testReadingAFIFOIsRefusedWithoutBlocking() throws {
        let path = try fifo()
        XCTAssertThrowsError(try InputFile.read(path)) {
            XCTAssertEqual($0 as? InputFile.Problem, InputFile.Problem(path: path, reason: "not a regular file (a FIFO)"))
        }
    }

    func testAFIFOIsNotARegularFileForReadersThatOpenByPath() throws {
        let path = try fifo()
        XCTAssertThrowsError(try InputFile.requireRegular(path)) {
            XCTAssertEqual(($0 as? InputFile.Problem)?.reason, "not a regular file (a FIFO)")
        }
    }

    func testADirectoryAndACharacterDeviceAreRefused() {
        XCTAssertThrowsError(try InputFile.read(dir)) { XCTAssertEqual(($0 as? InputFile.Problem)?.reason, "not a regular file (a directory)") }
        XCTAssertThrowsError(try InputFile.read("/dev/zero")) {
            XCTAssertEqual(($0 as? InputFile.Problem)?.reason, "not a regular file (a character device)")
        }
    }

    func testAMissingFileSaysSo() {
        XCTAssertThrowsError(try InputFile.read("\(dir)/absent.yaml")) { XCTAssertEqual(($0 as? InputFile.Problem)?.reason, "no such file") }
    }

    func testARegularFileIsReadWhole() throws {
        let text = String(repeating: "line\n", count: 20_000)
        try text.write(toFile: "\(dir)/a.txt", atomically: true, encoding: .utf8)
        XCTAssertEqual(try InputFile.readText("\(dir)/a.txt"), text)
    }

    func testAFileOverTheLimitIsRefusedWithItsSize() throws {
        try Data(count: 100).write(to: URL(fileURLWithPath: "\(dir)/big"))
        XCTAssertThrowsError(try InputFile.read("\(dir)/big", limit: 10)) {
            XCTAssertEqual(($0 as? InputFile.Problem)?.reason, "100 bytes; at most 10 are accepted")
        }
    }

    func testAModelFileThatIsAFIFOIsRefusedByTheGGUFReader() throws {
        let path = try fifo()
        XCTAssertThrowsError(try GGUFFile(path: path)) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
    }
}
