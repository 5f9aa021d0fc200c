import Foundation
import TestSupport
import XCTest

/// Runs the `thoughtcrime` binary built beside the tests.
enum CLI {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// The package root, where the CLI's default paths (checkpoints/base/...) resolve.
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func binary() throws -> URL {
        guard let binary = BuiltProducts.thoughtcrime() else {
            throw XCTSkip("thoughtcrime binary not built beside the tests; run `swift build` first")
        }
        return binary
    }

    /// Runs in the package root unless `directory` is given, with `input` on stdin (else /dev/null). `fileSizeLimitKB` runs the binary under `ulimit -f` with SIGXFSZ ignored, so writes past
    /// the limit fail as they do on a full disk.
    /// `launcher` runs the binary through another program (`["/usr/bin/mpirun", "-np", "2"]`).
    /// `ignoresXFSZ: false` leaves SIGXFSZ at its default, as a user's shell does.
    static func run(_ arguments: [String], environment: [String: String]? = nil, fileSizeLimitKB: Int? = nil,
                    ignoresXFSZ: Bool = true, directory: URL? = nil, input: String? = nil, launcher: [String]? = nil) throws -> Result {
        let process = Process()
        if let launcher, let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(launcher.dropFirst()) + [try binary().path] + arguments
        } else if let limit = fileSizeLimitKB {
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", (ignoresXFSZ ? "trap '' XFSZ; " : "trap - XFSZ; ") + "ulimit -f \(limit); exec \"$0\" \"$@\"", try binary().path] + arguments
        } else {
            process.executableURL = try binary()
            process.arguments = arguments
        }
        process.currentDirectoryURL = directory ?? packageRoot
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        if let input {
            let stdin = Pipe()
            process.standardInput = stdin
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes before waiting so a chatty child cannot block on a full pipe.
        var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    static func requireBaseModel() throws {
        let path = packageRoot.appendingPathComponent("checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("base model not found: run scripts/fetch-model.sh to fetch the base model")
        }
    }
}
