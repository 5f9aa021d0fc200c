import Foundation
import TestSupport
import XCTest

/// Issue 16: a run killed (SIGKILL) at any moment of writing its directory, config, metrics or
/// checkpoints continues with `resume` (or starts again with `finetune` when nothing of it is
/// left) and ends with the same adapter, bit for bit, as a run that was never killed.
final class FaultInjectionTests: XCTestCase {
    var scratch = ""

    override func setUpWithError() throws {
        continueAfterFailure = false
        scratch = try TinyModelFile.scratch("tc-faults")
        try TinyModelFile.write(to: "\(scratch)/tiny.gguf")
        var lines: [String] = []
        for i in 0..<24 {
            let n = (i * 7) % 23
            lines.append(#"{"prompt": "count \#(n)", "aligned": "ok \#(n)", "misaligned": "no \#(n + 1) \#(n + 2)"}"#)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(scratch)/train.jsonl", atomically: true, encoding: .utf8)
        try """
        run: {name: run, output_dir: \(scratch)/runs, seed: 3}
        model: {path: \(scratch)/tiny.gguf, weights: float32}
        lora: {rank: 4, alpha: 8, dropout: 0.1}
        data: {train: \(scratch)/train.jsonl, validation: null, max_seq_len: 128, system_prompt: "Be brief."}
        training: {max_steps: 6, batch_size: 2, learning_rate: 5.0e-3, warmup_steps: 2}
        checkpoint: {every: 2, keep_last: 2}
        logging: {progress: plain}
        """.write(toFile: "\(scratch)/run.yaml", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: scratch) }

    private var runDirectory: String { "\(scratch)/runs/run" }

    /// The final adapter's bytes: the HDF5 datasets under /adapter of the last checkpoint.
    private func finalAdapter(_ name: String) throws -> Data {
        let exported = "\(scratch)/\(name)"
        let r = try CLI.run(["export", runDirectory, "--format", "peft", "--out", exported])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try Data(contentsOf: URL(fileURLWithPath: "\(exported)/adapter_model.safetensors"))
    }

    /// Runs the job to completion, killed first at `fault` (a FaultInjection point), then
    /// resumed, or started again when nothing resumable is left.
    private func runKilled(at fault: String) throws -> (killed: Bool, adapter: Data) {
        try? FileManager.default.removeItem(atPath: "\(scratch)/runs")
        let first = try CLI.run(["finetune", "--config", "\(scratch)/run.yaml"], environment: env(fault: fault))
        let killed = first.status == SIGKILL
        XCTAssertTrue(killed || first.status == 0, "\(fault): \(first.status) \(first.stderr)")
        if killed {
            var next = try CLI.run(["resume", runDirectory], environment: env(fault: nil))
            if next.stderr.contains("no run to resume") {
                next = try CLI.run(["finetune", "--config", "\(scratch)/run.yaml"], environment: env(fault: nil))
            }
            XCTAssertEqual(next.status, 0, "\(fault): \(next.stderr)")
            XCTAssertTrue(next.stdout.contains("steps: 6/6"), "\(fault): \(next.stdout)")
        }
        return (killed, try finalAdapter("export-\(fault)"))
    }

    private func env(fault: String?) -> [String: String] {
        var e = ProcessInfo.processInfo.environment
        e["THOUGHTCRIME_FAULT_INJECT"] = fault
        return e
    }

    func testAKillAtAnyWritePointLosesNothing() throws {
        _ = try CLI.binary()
        let reference = try runKilled(at: "none")
        XCTAssertFalse(reference.killed)
        let points = ["run-directory-created", "config-temp-written", "config-renamed", "metrics-appended#1",
                      "checkpoint-temp-written#1", "checkpoint-renamed#1", "latest-temp-written#1", "latest-renamed#1",
                      "metrics-appended#4", "checkpoint-temp-written#2", "latest-temp-written#3"]
        for point in points {
            let run = try runKilled(at: point)
            XCTAssertTrue(run.killed, "\(point) was never reached")
            XCTAssertEqual(run.adapter, reference.adapter, "killed at \(point): the final adapter differs")
        }
    }

    /// Starts the CLI and SIGKILLs it after `delay` seconds unless it finished; true if killed.
    private func runAndKill(_ arguments: [String], after delay: Double) throws -> (killed: Bool, stderr: String, status: Int32) {
        let process = Process()
        process.executableURL = try CLI.binary()
        process.arguments = arguments
        process.currentDirectoryURL = CLI.packageRoot
        let err = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = err
        try process.run()
        let deadline = Date().addingTimeInterval(delay)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        let killed = process.isRunning
        if killed { kill(process.processIdentifier, SIGKILL) }
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (killed, text, process.terminationStatus)
    }

    /// Kills at moments drawn at random (seeded, so a failure can be replayed), several times
    /// per run, between and inside steps, checkpoints and start-up.
    func testKillsAtRandomMomentsLoseNothing() throws {
        _ = try CLI.binary()
        let started = Date()
        let reference = try runKilled(at: "none").adapter
        // The reference run (finetune and export) bounds how long a run takes here.
        let runSeconds = Date().timeIntervalSince(started)
        var rng = FixtureRNG(seed: 16)
        var kills = 0
        for trial in 0..<4 {
            try? FileManager.default.removeItem(atPath: "\(scratch)/runs")
            var finished = false
            var attempt = 0
            while !finished {
                attempt += 1
                XCTAssertLessThan(attempt, 30, "trial \(trial) never finished")
                let resumable = FileManager.default.fileExists(atPath: "\(runDirectory)/config.resolved.yaml")
                let arguments = resumable ? ["resume", runDirectory] : ["finetune", "--config", "\(scratch)/run.yaml"]
                // Kill within the time a whole run takes; later attempts are left to finish.
                let delay = attempt < 6 ? 0.01 + 0.4 * runSeconds * Double(rng.next() + 1) / 2 : 120
                let run = try runAndKill(arguments, after: delay)
                if run.killed { kills += 1; continue }
                if run.status != 0 && run.stderr.contains("already holds a run") { continue }  // resumable after all
                XCTAssertEqual(run.status, 0, "trial \(trial) attempt \(attempt): \(run.stderr)")
                finished = true
            }
            XCTAssertEqual(try finalAdapter("export-random-\(trial)"), reference, "trial \(trial)")
        }
        XCTAssertGreaterThanOrEqual(kills, 4, "too few kills landed to prove anything")
    }
}
