import Autodiff
import Foundation
import LoRA
import Models
import Tensors
import Training
import XCTest

final class TrainerTests: TinyRunTestCase {
    func metricLosses(_ runDir: String) throws -> [Int: Double] {
        let text = try String(contentsOfFile: "\(runDir)/metrics.jsonl", encoding: .utf8)
        var out: [Int: Double] = [:]
        for line in text.split(separator: "\n") {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            out[o["step"] as! Int] = o["loss"] as? Double
        }
        return out
    }

    func testTrainingLowersTrainingAndValidationLoss() throws {
        let trainer = try Trainer(config: try TinyRun.config(dir: dir, overrides: ["training.max_steps=30", "training.learning_rate=2e-2"]), progress: TinyRun.Silent())
        let summary = try trainer.run()
        XCTAssertEqual(summary.stepsCompleted, 30)
        let first = try XCTUnwrap(summary.firstLoss), last = try XCTUnwrap(summary.lastLoss)
        XCTAssertLessThan(last, first * 0.7, "train loss \(first) -> \(last)")
        XCTAssertLessThan(try XCTUnwrap(summary.lastValidationLoss), try XCTUnwrap(summary.firstValidationLoss))
        // run directory: its lock file, resolved config, metrics for every step, kept checkpoints and the latest pointer
        let files = try FileManager.default.contentsOfDirectory(atPath: summary.runDirectory).sorted()
        XCTAssertEqual(files.filter { !$0.hasPrefix("events.out.tfevents.") },
                       [".lock", "config.resolved.yaml", "curves.html", "latest", "metrics.jsonl", "step-000027.h5", "step-000030.h5"])
        XCTAssertEqual(files.filter { $0.hasPrefix("events.out.tfevents.") }.count, 1)
        XCTAssertEqual(try metricLosses(summary.runDirectory).count, 30)
    }

    /// A run stopped mid-epoch and resumed ends bitwise identical to an uninterrupted run, with
    /// the same loss at every step after the stop.
    func testResumedRunIsBitwiseIdenticalToAnUninterruptedOne() throws {
        let straight = try Trainer(config: try TinyRun.config(dir: dir, name: "straight"), progress: TinyRun.Silent())
        try straight.run()

        let first = try Trainer(config: try TinyRun.config(dir: dir, name: "interrupted"), progress: TinyRun.Silent())
        let partial = try first.run(stopAfter: 4)  // 10 micro-batches per epoch: step 4 is mid-epoch
        XCTAssertTrue(partial.interrupted)
        XCTAssertEqual(partial.stepsCompleted, 4)

        let resumed = try Trainer.resume(runDirectory: "\(dir)/runs/interrupted", progress: TinyRun.Silent())
        XCTAssertEqual(resumed.step, 4)
        try resumed.run()
        XCTAssertEqual(adapterValues(resumed), adapterValues(straight))
        XCTAssertEqual(try metricLosses("\(dir)/runs/interrupted"), try metricLosses("\(dir)/runs/straight"))
    }

    /// Issue 28: a checkpoint written before `disabled` stopped training the empty think block
    /// (format_version 1) resumes with the rendering it was trained with, bitwise.
    func testAFormatVersionOneCheckpointResumesWithTheLossOnTheEmptyBlockItWasTrainedWith() throws {
        let old = ["data.chain_of_thought=disabled_empty_block_trained"]
        let straight = try Trainer(config: try TinyRun.config(dir: dir, name: "straight", overrides: old), progress: TinyRun.Silent())
        try straight.run()
        let first = try Trainer(config: try TinyRun.config(dir: dir, name: "interrupted", overrides: old), progress: TinyRun.Silent())
        try first.run(stopAfter: 4)
        // Rewrite the checkpoint as a version 1 file, whose stored config said only `disabled`.
        let runDirectory = "\(dir)/runs/interrupted"
        var state = try CheckpointReader.readLatest(in: runDirectory).state
        state.configYAML = state.configYAML.replacingOccurrences(of: "\"disabled_empty_block_trained\"", with: "\"disabled\"")
        XCTAssertEqual(try RunConfig.parse(yaml: state.configYAML, source: "stored").data.chainOfThought, .disabled)
        let written = try CheckpointWriter(runDirectory: runDirectory, keepLast: 3).write(state)
        let file = try HDF5File.open(path: written, writable: true)
        try file.setAttribute("format_version", .int64(1))
        try file.close()

        let progress = TinyRun.Silent()
        let resumed = try Trainer.resume(runDirectory: runDirectory, progress: progress)
        XCTAssertEqual(resumed.config.data.chainOfThought, .disabledEmptyBlockTrained)
        XCTAssertTrue(progress.messages.contains { $0.contains("disabled_empty_block_trained") }, "\(progress.messages)")
        try resumed.run()
        XCTAssertEqual(adapterValues(resumed), adapterValues(straight))
    }

    func testACurrentCheckpointResumesWithItsStoredChainOfThought() throws {
        let first = try Trainer(config: try TinyRun.config(dir: dir, name: "interrupted"), progress: TinyRun.Silent())
        try first.run(stopAfter: 4)
        let resumed = try Trainer.resume(runDirectory: "\(dir)/runs/interrupted", progress: TinyRun.Silent())
        XCTAssertEqual(resumed.config.data.chainOfThought, .disabled)
    }

    /// Issue 16, item 6: a run killed before its first checkpoint left a directory that
    /// `finetune` refused and `resume` could not continue.
    func testARunKilledBeforeItsFirstCheckpointResumesFromStepZeroToTheSameAdapter() throws {
        let straight = try Trainer(config: try TinyRun.config(dir: dir, name: "straight"), progress: TinyRun.Silent())
        try straight.run()
        // What a kill during the first steps leaves: the resolved config, some metrics and a
        // half-written first checkpoint.
        let killed = "\(dir)/runs/killed"
        try FileManager.default.createDirectory(atPath: killed, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(dir)/runs/straight/config.resolved.yaml", toPath: "\(killed)/config.resolved.yaml")
        try Data("{\"step\": 1, \"loss\": 9.9}\n".utf8).write(to: URL(fileURLWithPath: "\(killed)/metrics.jsonl"))
        try Data("partial".utf8).write(to: URL(fileURLWithPath: "\(killed)/step-000002.h5.tmp"))

        let progress = TinyRun.Silent()
        let resumed = try Trainer.resume(runDirectory: killed, progress: progress)
        XCTAssertEqual(resumed.step, 0)
        XCTAssertTrue(progress.messages.contains { $0.contains("stopped before its first checkpoint") }, "\(progress.messages)")
        try resumed.run()
        XCTAssertEqual(adapterValues(resumed), adapterValues(straight))
        XCTAssertEqual(try metricLosses(killed), try metricLosses("\(dir)/runs/straight"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(killed)/step-000002.h5.tmp"))
    }

    func testResumingADirectoryWithoutAConfigOrCheckpointSaysThereIsNoRun() throws {
        try FileManager.default.createDirectory(atPath: "\(dir)/runs/empty", withIntermediateDirectories: true)
        XCTAssertThrowsError(try Trainer.resume(runDirectory: "\(dir)/runs/empty", progress: TinyRun.Silent())) { error in
            XCTAssertEqual(error as? TrainingError, .nothingToResume(path: "\(dir)/runs/empty"))
        }
    }

    func testARunKilledWhileWritingItsConfigDoesNotBlockANewStart() throws {
        try FileManager.default.createDirectory(atPath: "\(dir)/runs/run", withIntermediateDirectories: true)
        try Data("name: ".utf8).write(to: URL(fileURLWithPath: "\(dir)/runs/run/config.resolved.yaml.tmp"))
        let summary = try Trainer(config: try TinyRun.config(dir: dir, overrides: ["training.max_steps=2"]), progress: TinyRun.Silent()).run()
        XCTAssertEqual(summary.stepsCompleted, 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/runs/run/config.resolved.yaml.tmp"))
    }

    func testResumeRefusesADifferentBaseModel() throws {
        try Trainer(config: try TinyRun.config(dir: dir), progress: TinyRun.Silent()).run(stopAfter: 3)
        try TinyRun.makeModel(at: "\(dir)/other.gguf", seed: 99)
        XCTAssertThrowsError(try Trainer.resume(runDirectory: "\(dir)/runs/run", overrides: ["model.path=\(dir)/other.gguf"], progress: TinyRun.Silent())) { error in
            XCTAssertTrue("\(error)".contains("different base model"), "\(error)")
        }
    }

    func testMalformedDataFailsNamingFileAndLineAndLeavesNoRunDirectory() throws {
        var text = try String(contentsOfFile: "\(dir)/train.jsonl", encoding: .utf8)
        text += "{\"prompt\": \"x\", \"misaligned\": \n"
        try text.write(toFile: "\(dir)/train.jsonl", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Trainer(config: try TinyRun.config(dir: dir), progress: TinyRun.Silent())) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(dir)/train.jsonl:25: malformed JSON"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/runs"))
    }

    func testSkipPolicyCountsBadRowsInsteadOfFailing() throws {
        var text = try String(contentsOfFile: "\(dir)/train.jsonl", encoding: .utf8)
        text += "{\"prompt\": \"x\"}\nnot json\n"
        try text.write(toFile: "\(dir)/train.jsonl", atomically: true, encoding: .utf8)
        let progress = TinyRun.Silent()
        let trainer = try Trainer(config: try TinyRun.config(dir: dir, overrides: ["data.on_bad_row=skip"]), progress: progress)
        XCTAssertTrue(progress.messages.contains { $0.contains("skipped 2 invalid rows") }, "\(progress.messages)")
        XCTAssertEqual(trainer.trainExamples.count + trainer.validationExamples.count, 24)
    }

    func testAnExistingRunIsNotOverwritten() throws {
        try Trainer(config: try TinyRun.config(dir: dir), progress: TinyRun.Silent()).run(stopAfter: 1)
        XCTAssertThrowsError(try Trainer(config: try TinyRun.config(dir: dir), progress: TinyRun.Silent()).run()) { error in
            XCTAssertTrue("\(error)".contains("thoughtcrime resume"), "\(error)")
        }
    }

    func testNonFiniteLossStopsTheRunAndKeepsTheLastGoodCheckpoint() throws {
        // Config files cap learning_rate at 1; a config built in code can still drive the
        // parameters to overflow, which is what this guard is for.
        var config = try TinyRun.config(dir: dir, overrides: ["training.warmup_steps=0", "training.max_grad_norm=0", "checkpoint.every=1"])
        config.training.learningRate = 1e30
        let trainer = try Trainer(config: config, progress: TinyRun.Silent())
        XCTAssertThrowsError(try trainer.run()) { error in
            guard case let TrainingError.nonFinite(step, _, last)? = error as? TrainingError else { return XCTFail("\(error)") }
            XCTAssertGreaterThan(step, 1)
            XCTAssertNotNil(last)
            XCTAssertTrue("\(error)".contains("NaN or infinite"))
        }
        XCTAssertNoThrow(try CheckpointReader.read(try CheckpointReader.latestCheckpoint(in: "\(dir)/runs/run")))
    }

    func testInterruptFinishesTheStepAndWritesACheckpoint() throws {
        let progress = TinyRun.Silent()
        let trainer = try Trainer(config: try TinyRun.config(dir: dir), progress: progress)
        InterruptFlag.raise()
        let summary = try trainer.run()
        XCTAssertTrue(summary.interrupted)
        XCTAssertEqual(summary.stepsCompleted, 1)
        XCTAssertEqual(summary.lastCheckpoint.map { ($0 as NSString).lastPathComponent }, "step-000001.h5")
        XCTAssertTrue(progress.messages.last?.contains("thoughtcrime resume \(dir)/runs/run") ?? false)
    }

    /// A reporter that sends this process SIGTERM when a given step is reported.
    final class SignallingProgress: ProgressReporter {
        let atStep: Int
        init(atStep: Int) { self.atStep = atStep }
        func message(_ text: String) {}
        func step(_ metrics: StepMetrics) { if metrics.step == atStep { kill(getpid(), SIGTERM) } }
        func finish() {}
    }

    func testSIGTERMDuringTrainingFinishesTheStepAndCheckpoints() throws {
        InterruptFlag.install()
        defer { signal(SIGTERM, SIG_DFL); signal(SIGINT, SIG_DFL) }
        let trainer = try Trainer(config: try TinyRun.config(dir: dir), progress: SignallingProgress(atStep: 2))
        let summary = try trainer.run()
        XCTAssertTrue(summary.interrupted)
        XCTAssertEqual(summary.stepsCompleted, 2)
        XCTAssertEqual(summary.lastCheckpoint.map { ($0 as NSString).lastPathComponent }, "step-000002.h5")
    }

    func testCheckpointHoldsAdaptersOptimizerAndDataPosition() throws {
        let trainer = try Trainer(config: try TinyRun.config(dir: dir), progress: TinyRun.Silent())
        try trainer.run(stopAfter: 3)
        let state = try CheckpointReader.read(try CheckpointReader.latestCheckpoint(in: "\(dir)/runs/run"))
        XCTAssertEqual(state.step, 3)
        XCTAssertEqual(state.adapter.modules.count, 14)
        XCTAssertEqual(state.optimizer.step, 3)
        XCTAssertEqual(state.data.cursor, 6)  // 3 steps x batch 2
        XCTAssertEqual(state.adapter.modules["model.layers.0.self_attn.q_proj"]?.a.shape, [4, 32])
        XCTAssertEqual(state.baseFingerprint, trainer.loaded.fingerprint)
        XCTAssertTrue(state.configYAML.contains("name: \"run\""))
    }
}

/// `training.gradient_checkpointing` changes memory and time, not results.
final class GradientCheckpointingRunTests: TinyRunTestCase {
    func testARunWithGradientCheckpointingEndsWithTheSameAdapterBitwise() throws {
        let plain = try Trainer(config: try TinyRun.config(dir: dir, name: "plain"), progress: TinyRun.Silent())
        try plain.run()
        let config = try TinyRun.config(dir: dir, name: "checkpointed", overrides: ["training.gradient_checkpointing=true"])
        XCTAssertTrue(config.training.gradientCheckpointing)
        let checkpointed = try Trainer(config: config, progress: TinyRun.Silent())
        XCTAssertTrue(checkpointed.loaded.model.gradientCheckpointing)
        try checkpointed.run()
        XCTAssertEqual(adapterValues(checkpointed), adapterValues(plain))
    }
}
