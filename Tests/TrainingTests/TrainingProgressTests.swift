import Foundation
import Training
import XCTest

/// What a person watching a run sees, and what metrics.jsonl records (issue 17, item 3).
final class TrainingProgressTests: TinyRunTestCase {
    private func metricLines(_ runDir: String) throws -> [[String: Any]] {
        try String(contentsOfFile: "\(runDir)/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testValidationBeforeTrainingIsAnnouncedAndRecordedAsStepZero() throws {
        let progress = TinyRun.Silent()
        let summary = try Trainer(config: try TinyRun.config(dir: dir), progress: progress).run()
        let lines = try metricLines(summary.runDirectory)
        XCTAssertEqual(lines.first?["step"] as? Int, 0)
        XCTAssertEqual(lines.first?["val_loss"] as? Double, try XCTUnwrap(summary.firstValidationLoss))
        XCTAssertNil(lines.first?["loss"], "step 0 trained nothing")
        let announced = try XCTUnwrap(progress.messages.firstIndex { $0.hasPrefix("validation before training:") }, "\(progress.messages)")
        XCTAssertTrue(progress.messages[announced + 1].hasPrefix("step 0 validation loss "), "\(progress.messages)")
    }

    func testEveryMetricsLineCarriesAWallClockTime() throws {
        let before = Date().addingTimeInterval(-1)
        let summary = try Trainer(config: try TinyRun.config(dir: dir), progress: TinyRun.Silent()).run()
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let lines = try metricLines(summary.runDirectory)
        XCTAssertEqual(lines.count, 9, "step 0 and steps 1-8")
        for line in lines {
            let time = try XCTUnwrap((line["time"] as? String).flatMap(formatter.date(from:)), "\(line)")
            XCTAssertTrue(time >= before && time <= Date(), "\(line)")
        }
    }

    /// Validation after a step moved the tokens/s clock past that step's end: 4.5e11 tok/s was
    /// reported on a 2-core machine.
    func testTokensPerSecondStaysPlausibleWhenValidationRunsEveryStep() throws {
        let summary = try Trainer(config: try TinyRun.config(dir: dir, overrides: ["training.eval_every=1", "data.validation_split=0.5"]), progress: TinyRun.Silent()).run()
        for line in try metricLines(summary.runDirectory) where (line["step"] as? Int ?? 0) > 0 {
            let rate = try XCTUnwrap(line["tokens_per_s"] as? Double, "\(line)")
            XCTAssertTrue(rate > 0 && rate < 1e8, "\(line)")
        }
    }

    func testEveryCheckpointIsReported() throws {
        final class Recorder: ProgressReporter {
            var checkpoints: [Int] = []
            func message(_ text: String) {}
            func step(_ metrics: StepMetrics) {}
            func checkpointWritten(_ path: String, step: Int) { checkpoints.append(step) }
            func finish() {}
        }
        let recorder = Recorder()
        try Trainer(config: try TinyRun.config(dir: dir), progress: recorder).run()
        XCTAssertEqual(recorder.checkpoints, [3, 6, 8])
    }

    func testResumingWithALongerScheduleSaysTheScheduleIsRecomputed() throws {
        try Trainer(config: try TinyRun.config(dir: dir), progress: TinyRun.Silent()).run(stopAfter: 3)
        let progress = TinyRun.Silent()
        _ = try Trainer.resume(runDirectory: "\(dir)/runs/run", overrides: ["training.max_steps=20"], progress: progress)
        let note = try XCTUnwrap(progress.messages.first { $0.hasPrefix("note: the learning-rate schedule differs") }, "\(progress.messages)")
        XCTAssertTrue(note.contains("over 8 steps") && note.contains("over 20 steps") && note.contains("step 4 trains at lr"), note)
    }

    func testResumingWithTheSameScheduleSaysNothingAboutIt() throws {
        try Trainer(config: try TinyRun.config(dir: dir), progress: TinyRun.Silent()).run(stopAfter: 3)
        let progress = TinyRun.Silent()
        _ = try Trainer.resume(runDirectory: "\(dir)/runs/run", progress: progress)
        XCTAssertFalse(progress.messages.contains { $0.contains("schedule") }, "\(progress.messages)")
    }
}

/// The live progress line never wraps: it fits the terminal at every width.
final class ProgressBarTests: XCTestCase {
    private let metrics = StepMetrics(
        step: 137, totalSteps: 1200, epoch: 2, loss: 1.23456, learningRate: 1.5e-4, gradNorm: 0.8, tokensPerSecond: 2345.6,
        tokensSeen: 99_000, validationLoss: 1.4567, elapsedSeconds: 3725, time: Date())

    func testTheLineFitsEveryTerminalWidth() {
        for columns in [20, 40, 60, 70, 80, 100, 160] {
            var written: [String] = []
            let bar = ProgressBar(width: { columns }, write: { written.append($0) })
            bar.step(metrics)
            bar.checkpointWritten("/runs/x/step-000135.h5", step: 135)
            for chunk in written {
                let visible = chunk.replacingOccurrences(of: "\r\u{1B}[K", with: "")
                XCTAssertLessThan(visible.count, columns, "\(columns) columns: '\(visible)'")
                XCTAssertTrue(visible.contains("137/1200"), "\(columns) columns: '\(visible)'")
            }
        }
    }

    func testAWideTerminalShowsElapsedTimeEpochValidationAndTheLastCheckpoint() {
        let bar = ProgressBar(width: { 160 }, write: { _ in })
        bar.step(metrics)
        bar.checkpointWritten("/runs/x/step-000135.h5", step: 135)
        let line = bar.line(metrics, columns: 160)
        for part in ["137/1200", "loss 1.2346", "1:02:05 elapsed", "ep 2", "val 1.4567", "saved @135", "ETA ", "2346 tok/s", "lr 1.5e-04"] {
            XCTAssertTrue(line.contains(part), "'\(part)' missing from '\(line)'")
        }
    }

    func testANarrowTerminalKeepsLossAndETABeforeTheRest() {
        let line = ProgressBar(width: { 40 }, write: { _ in }).line(metrics, columns: 40)
        XCTAssertTrue(line.contains("loss 1.2346") && line.contains("ETA"), line)
        XCTAssertFalse(line.contains("lr "), line)
    }

    func testAMessageClearsTheLineAndRedrawsIt() {
        var written: [String] = []
        let bar = ProgressBar(width: { 80 }, write: { written.append($0) })
        bar.step(metrics)
        bar.message("checkpoint note")
        XCTAssertEqual(written[1], "\r\u{1B}[Kcheckpoint note\n")
        XCTAssertTrue(written[2].hasPrefix("\r\u{1B}[K") && written[2].contains("137/1200"), written[2])
    }
}
