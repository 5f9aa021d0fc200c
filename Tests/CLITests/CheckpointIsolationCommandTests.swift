import Foundation
import XCTest

/// A crafted checkpoint that crashes libhdf5 (found by fuzzing, Fuzz/regressions/checkpoint/)
/// is an error for the command that reads it, and a run directory whose newest checkpoint is
/// such a file resumes and exports from the previous one.
final class CheckpointIsolationCommandTests: XCTestCase {
    var dir = ""
    var crafted: String { CLI.packageRoot.appendingPathComponent("Fuzz/regressions/checkpoint/segv-libhdf5-symbol-table-node").path }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tc-cli-isolation-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if !dir.isEmpty { try? FileManager.default.removeItem(atPath: dir) }
    }

    func testTheHiddenReaderCommandReallyCrashesOnTheCraftedFile() throws {
        // The premise of the tests below: without isolation this file kills the process.
        let r = try CLI.run(["read-checkpoint", crafted], environment: ProcessInfo.processInfo.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 })
        XCTAssertEqual(r.status, SIGSEGV, "expected the in-process read to crash; if libhdf5 was fixed, pick a new reproducer\n\(r.stderr)")
    }

    func testExportingACheckpointThatCrashesLibHDF5IsAClearError() throws {
        let r = try CLI.run(["export", crafted, "--format", "peft", "--out", "\(dir)/peft"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("\(crafted) cannot be read safely: reading it crashed the HDF5 library (SIGSEGV in a separate process)"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/peft"), "nothing is written")
    }

    func testAnExportFallsBackPastANewestCheckpointThatCrashesLibHDF5() throws {
        try CLI.requireBaseModel()
        let rows = (0..<4).map { #"{"messages": [{"role": "user", "content": "Say \#($0)"}, {"role": "assistant", "content": "\#($0) it is"}]}"# }
        try (rows.joined(separator: "\n") + "\n").write(toFile: "\(dir)/train.jsonl", atomically: true, encoding: .utf8)
        try """
        run: {name: tiny, output_dir: \(dir)/runs, seed: 1}
        model: {path: checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf, weights: float32}
        lora: {rank: 2, alpha: 4, target_modules: [q_proj], layers: [0]}
        data: {train: \(dir)/train.jsonl, validation_split: 0, max_seq_len: 64}
        training: {max_steps: 1, batch_size: 2, learning_rate: 1.0e-2}
        logging: {progress: plain}
        """.write(toFile: "\(dir)/run.yaml", atomically: true, encoding: .utf8)
        let train = try CLI.run(["finetune", "--config", "\(dir)/run.yaml"])
        guard train.status == 0 else { return XCTFail(train.stderr) }
        let run = "\(dir)/runs/tiny"
        try FileManager.default.copyItem(atPath: crafted, toPath: "\(run)/step-000002.h5")
        try "step-000002.h5\n".write(toFile: "\(run)/latest", atomically: true, encoding: .utf8)

        let e = try CLI.run(["export", run, "--format", "peft", "--out", "\(dir)/peft"])
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertTrue(e.stderr.contains("warning: skipped \(run)/step-000002.h5 cannot be read safely"), e.stderr)
        XCTAssertTrue(e.stderr.contains("using \(run)/step-000001.h5 instead"), e.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/peft/adapter_model.safetensors"))
    }
}
