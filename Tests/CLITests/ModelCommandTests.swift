import Foundation
import XCTest

/// `generate`, `tokenize`, `score` and `inspect` on the real base model, as a user runs them.
final class ModelCommandTests: XCTestCase {
    func testGenerateAnswersTheCapitalOfFranceGreedily() throws {
        try CLI.requireBaseModel()
        let r = try CLI.run(["generate", "What is the capital of France?", "--max-tokens", "16"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "The capital of France is Paris.")
    }

    func testGenerateBatchesSeveralPromptsAsJSON() throws {
        try CLI.requireBaseModel()
        let r = try CLI.run(["generate", "--json", "--max-tokens", "8", "--temperature", "0.8", "--seed", "5", "Hi", "Name a colour."])
        XCTAssertEqual(r.status, 0, r.stderr)
        let replies = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]
        XCTAssertEqual(replies?.count, 2)
        XCTAssertEqual(replies?[1]["prompt"] as? String, "Name a colour.")
        let again = try CLI.run(["generate", "--json", "--max-tokens", "8", "--temperature", "0.8", "--seed", "5", "Hi", "Name a colour."])
        XCTAssertEqual(again.stdout, r.stdout, "same seed, same samples")
    }

    func testThinkOnOpensAThinkBlockWithThePrefill() throws {
        try CLI.requireBaseModel()
        let r = try CLI.run(["generate", "--think", "on", "--prefill", "Okay", "--max-tokens", "4", "Hello"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("<think>\nOkay"), r.stdout)
    }

    func testTokenizeReportsIdsAndPieces() throws {
        try CLI.requireBaseModel()
        let r = try CLI.run(["tokenize", "--json", "Hello world<|im_end|>"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(object?["ids"] as? [Int], [19556, 905, 2])
        XCTAssertEqual(object?["pieces"] as? [String], ["Hello", " world", "<|im_end|>"])
    }

    func testScoreGivesPerTokenLogProbabilitiesOfACompletion() throws {
        try CLI.requireBaseModel()
        let r = try CLI.run(["score", "--json", "--prompt", "What is the capital of France?", "--completion", "The capital of France is Paris."])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let tokens = object?["tokens"] as? [[String: Any]]
        XCTAssertEqual(tokens?.count, 7)
        XCTAssertEqual(tokens?.last?["piece"] as? String, ".")
        let total = object?["total_logprob"] as? Double ?? 0
        XCTAssertLessThan(total, 0)
        XCTAssertGreaterThan(total, -10, "the model's own greedy answer is likely")
    }

    func testInspectSummarisesTheGGUF() throws {
        try CLI.requireBaseModel()
        let r = try CLI.run(["inspect", "checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf", "--max-tensors", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("general.architecture: \"llama\""))
        XCTAssertTrue(r.stdout.contains("tensor types: F32 x61, Q4_1 x210, Q8_0 x1"))
        XCTAssertTrue(r.stdout.contains("parameters: 134.5M"))
    }

    func testAMissingModelIsARuntimeErrorNamingThePathNotAUsageError() throws {
        for command in ["generate", "score", "serve"] {
            let r = try CLI.run([command, "--model", "/nonexistent/m.gguf"] + (command == "serve" ? [] : ["hi"]))
            XCTAssertEqual(r.status, 1, "\(command): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("base model not found: /nonexistent/m.gguf (no such file or directory)"), "\(command): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Usage:"), "\(command): \(r.stderr)")
        }
    }

    func testTheMissingDefaultModelNamesTheDirectoryAndTheFetchScript() throws {
        let elsewhere = FileManager.default.temporaryDirectory
        let r = try CLI.run(["tokenize", "hi"], directory: elsewhere)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("base model not found: checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf (no such file or directory relative to \(elsewhere.path)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("Run scripts/fetch-model.sh"), r.stderr)
    }

    func testVersionIsPrinted() throws {
        let r = try CLI.run(["--version"])
        XCTAssertEqual(r.status, 0)
        XCTAssertNotNil(r.stdout.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression), r.stdout)
    }

    func testTokenizeOffersOnlyTheOptionsItUses() throws {
        let help = try CLI.run(["tokenize", "--help"]).stdout
        XCTAssertTrue(help.contains("--model"), help)
        XCTAssertFalse(help.contains("--weights"), help)
        XCTAssertFalse(help.contains("--adapter"), help)
    }

    func testWeightsHelpStatesEachCommandsDefault() throws {
        for command in ["generate", "serve", "score"] {
            let help = try CLI.run([command, "--help"]).stdout.replacingOccurrences(of: "\n", with: " ")
                .replacingOccurrences(of: #" +"#, with: " ", options: .regularExpression)
            XCTAssertTrue(help.contains("Default for generate, chat and serve: quantized+onednn-bf16 on CPUs with AMX where oneDNN runs bf16"), "\(command): \(help)")
            XCTAssertTrue(help.contains("quantized elsewhere"), "\(command): \(help)")
            XCTAssertTrue(help.contains("float32 for score and export"), "\(command): \(help)")
        }
    }

    func testInspectOfAnUnreadableFileFailsNamingIt() throws {
        let r = try CLI.run(["inspect", "/nonexistent/file.gguf"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("/nonexistent/file.gguf"), r.stderr)
    }

    func testChatKeepsTheConversationAndFollowsItsCommands() throws {
        try CLI.requireBaseModel()
        let input = "What is the capital of France?\nWhat did I just ask you about?\n/think on\n/system Answer in one word.\n/think sometimes\n/bogus\n/quit\nnever read\n"
        let r = try CLI.run(["chat", "--max-tokens", "24"], input: input)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.first?.contains("Paris") ?? false, r.stdout)
        XCTAssertTrue(lines.contains("(thinking on)"), r.stdout)
        XCTAssertTrue(lines.contains("(system message set; conversation cleared: Answer in one word.)"), r.stdout)
        XCTAssertTrue(lines.contains("(usage: /think on|off|native)"), r.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("(unknown command /bogus") }, r.stdout)
        XCTAssertEqual(lines.count, 6, "two replies and four command notes; nothing after /quit: \(r.stdout)")
        // The second reply saw the first exchange: alone, the same question gets another reply.
        let alone = try CLI.run(["generate", "--max-tokens", "24", "What did I just ask you about?"])
        XCTAssertNotEqual(lines[1], alone.stdout.trimmingCharacters(in: .whitespacesAndNewlines), r.stdout)
    }

    /// On a terminal (a pseudo-terminal made by `script`), chat's input line can be edited and
    /// earlier lines recalled: Up and Enter repeats /reset, Backspace mends "/quix" into "/quit".
    func testChatOnATerminalEditsTheLineAndRecallsHistory() throws {
        try CLI.requireBaseModel()
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else { throw XCTSkip("util-linux's script is not installed") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-q", "-e", "-c", "'\(try CLI.binary().path)' chat", "/dev/null"]
        var environment = ProcessInfo.processInfo.environment
        environment["TERM"] = "xterm"
        process.environment = environment
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        var seen = Data()
        // Each line is typed once the editor has drawn its next prompt after the previous line's
        // reply (raw mode discards what came earlier).
        func waitForPrompt(after marker: String, count: Int) throws {
            let deadline = Date().addingTimeInterval(120)
            while true {
                let text = String(decoding: seen, as: UTF8.self)
                let parts = text.components(separatedBy: marker)
                if parts.count - 1 >= count, let tail = parts.last, tail.contains("> ") { return }
                guard Date() < deadline, process.isRunning else {
                    if process.isRunning { process.terminate() }
                    throw ChatStalled(description: "chat did not draw its prompt: \(text)")
                }
                seen += output.fileHandleForReading.availableData
            }
        }
        try waitForPrompt(after: "/quit.", count: 1)
        for (k, keys) in ["/reset\r", "\u{1B}[A\r", "/quix\u{7F}t\r"].enumerated() {
            if k > 0 { try waitForPrompt(after: "(conversation cleared)", count: k) }
            Thread.sleep(forTimeInterval: 0.1)
            input.fileHandleForWriting.write(Data(keys.utf8))
        }
        process.waitUntilExit()
        seen += output.fileHandleForReading.readDataToEndOfFile()
        let text = String(decoding: seen, as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertEqual(text.components(separatedBy: "(conversation cleared)").count - 1, 2, "Up recalled /reset: \(text)")
        XCTAssertFalse(text.contains("unknown command"), "Backspace mended /quix into /quit: \(text)")
    }
}

/// A chat session that stopped answering in a terminal test.
struct ChatStalled: Error, CustomStringConvertible { let description: String }
