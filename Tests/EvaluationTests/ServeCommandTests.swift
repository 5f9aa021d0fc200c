import Foundation
import TestSupport
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `thoughtcrime serve` as a user runs it: the built binary on a free port.
final class ServeCommandTests: XCTestCase {
    static func binary() throws -> URL {
        guard let binary = BuiltProducts.thoughtcrime() else {
            throw XCTSkip("thoughtcrime binary not built beside the tests; run `swift build` first")
        }
        return binary
    }

    func testServeWithPortZeroPrintsThePortItListensOn() async throws {
        let binary = try Self.binary()
        let modelPath = FileManager.default.temporaryDirectory.appendingPathComponent("tc-serve-cli-\(UUID().uuidString).gguf").path
        try TinyServedModel.write(to: modelPath)
        defer { try? FileManager.default.removeItem(atPath: modelPath) }

        let process = Process()
        process.executableURL = binary
        process.arguments = ["serve", "--model", modelPath, "--port", "0", "--served-model-name", "tiny-cli"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() }; process.waitUntilExit() }

        // The first line announces the address; read it off the pipe (bounded by the 15 s watchdog).
        let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 15, execute: watchdog)
        defer { watchdog.cancel() }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let announcement = String(decoding: line, as: UTF8.self)
        let url = try XCTUnwrap(announcement.split(separator: " ").first { $0.hasPrefix("http://127.0.0.1:") }, announcement)
        XCTAssertFalse(url.hasSuffix(":0/v1"), "the real port is printed: \(announcement)")

        let (data, response) = try await URLSession.shared.data(from: try XCTUnwrap(URL(string: url + "/models")))
        XCTAssertEqual((response as? HTTPURLResponse)?.statusCode, 200)
        XCTAssertTrue(String(decoding: data, as: UTF8.self).contains("\"tiny-cli\""))
    }
}
