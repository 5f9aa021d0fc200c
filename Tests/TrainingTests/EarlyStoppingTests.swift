import Foundation
import Training
import XCTest

/// Early stopping on validation loss and the kept best checkpoint (issue 17, item 11).
final class EarlyStoppingTests: TinyRunTestCase {
    /// Evaluates every step; an improvement must exceed `threshold`.
    private func config(_ name: String = "run", patience: Int?, threshold: Double = 0, keepBest: Bool = false, maxSteps: Int = 8) throws -> RunConfig {
        var overrides = ["training.eval_every=1", "training.max_steps=\(maxSteps)", "checkpoint.every=100", "checkpoint.keep_last=1",
                         "training.early_stopping_threshold=\(threshold)", "checkpoint.keep_best=\(keepBest)"]
        if let patience { overrides.append("training.early_stopping_patience=\(patience)") }
        return try TinyRun.config(dir: dir, name: name, overrides: overrides)
    }

    private func pointer(_ run: String, _ name: String) throws -> String {
        try String(contentsOfFile: "\(run)/\(name)", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testTrainingStopsAfterPatienceEvaluationsWithoutImprovementAndKeepsTheBest() throws {
        // No later evaluation can beat the first by 100: steps 2 and 3 do not improve.
        let progress = TinyRun.Silent()
        let summary = try Trainer(config: try config(patience: 2, threshold: 100), progress: progress).run()
        XCTAssertTrue(summary.stoppedEarly)
        XCTAssertFalse(summary.interrupted)
        XCTAssertEqual(summary.stepsCompleted, 3)
        XCTAssertEqual(try pointer(summary.runDirectory, "best"), "step-000001.h5")
        XCTAssertEqual(summary.bestCheckpoint, "\(summary.runDirectory)/step-000001.h5")
        let files = try FileManager.default.contentsOfDirectory(atPath: summary.runDirectory).filter { $0.hasSuffix(".h5") }.sorted()
        XCTAssertEqual(files, ["step-000001.h5", "step-000003.h5"], "the best survives keep_last 1 beside the last")
        XCTAssertTrue(progress.messages.contains { $0.hasPrefix("early stopping at step 3") }, "\(progress.messages)")
    }

    func testWithoutEarlyStoppingKeepBestKeepsTheLowestValidationCheckpoint() throws {
        let summary = try Trainer(config: try config(patience: nil, keepBest: true), progress: TinyRun.Silent()).run()
        XCTAssertFalse(summary.stoppedEarly)
        XCTAssertEqual(summary.stepsCompleted, 8)
        let lines = try String(contentsOfFile: "\(summary.runDirectory)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        var best = (Double.infinity, 0)
        for line in lines {
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            if let v = o["val_loss"] as? Double, let s = o["step"] as? Int, s > 0, v < best.0 { best = (v, s) }
        }
        XCTAssertEqual(try pointer(summary.runDirectory, "best"), CheckpointFormat.fileName(step: best.1))
        XCTAssertEqual(summary.bestValidationLoss, best.0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(summary.runDirectory)/\(CheckpointFormat.fileName(step: best.1))"))
    }

    func testTheBestCheckpointLoadsThroughItsPointer() throws {
        let summary = try Trainer(config: try config(patience: 2, threshold: 100), progress: TinyRun.Silent()).run()
        let viaPointer = try AdapterSource.load(path: "\(summary.runDirectory)/best", modelConfig: nil)
        XCTAssertEqual(viaPointer.path, "\(summary.runDirectory)/step-000001.h5")
        XCTAssertEqual(try CheckpointReader.read(viaPointer.path).metrics.bestStep, 1)
    }

    func testAResumedRunStopsWhereAnUninterruptedOneDoes() throws {
        let straight = try Trainer(config: try config("straight", patience: 3, threshold: 100), progress: TinyRun.Silent()).run()
        let first = try Trainer(config: try config("resumed", patience: 3, threshold: 100), progress: TinyRun.Silent())
        try first.run(stopAfter: 2)
        let resumed = try Trainer.resume(runDirectory: "\(dir)/runs/resumed", progress: TinyRun.Silent()).run()
        XCTAssertEqual(resumed.stepsCompleted, straight.stepsCompleted)
        XCTAssertTrue(resumed.stoppedEarly)
        XCTAssertEqual(try pointer("\(dir)/runs/resumed", "best"), try pointer(straight.runDirectory, "best"))
    }
}
