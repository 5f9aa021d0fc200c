import Foundation
import Training
import XCTest

/// `thoughtcrime plot` and the curves.html every run gets (issue 17, item 12).
final class LossCurvesTests: TinyRunTestCase {
    func testEveryRunGetsACurvesPageBesideItsMetrics() throws {
        let summary = try Trainer(config: try TinyRun.config(dir: dir), progress: TinyRun.Silent()).run()
        let page = try String(contentsOfFile: "\(summary.runDirectory)/curves.html", encoding: .utf8)
        XCTAssertTrue(page.contains("Training loss") && page.contains("Validation loss") && page.contains("Learning rate"))
        // raw and smoothed training loss, validation loss, learning rate: one path each for one run
        XCTAssertEqual(page.components(separatedBy: "class='curve'").count - 1, 4)
        XCTAssertFalse(page.contains("<script"), "self-contained and static")
    }

    func testSeveralRunsShareTheChartsWithOneColourEach() throws {
        let a = try Trainer(config: try TinyRun.config(dir: dir, name: "a"), progress: TinyRun.Silent()).run()
        let b = try Trainer(config: try TinyRun.config(dir: dir, name: "b", overrides: ["training.learning_rate=2e-2"]), progress: TinyRun.Silent()).run()
        let curves = LossCurves(runs: [try MetricsLog(runDirectory: a.runDirectory), try MetricsLog(runDirectory: b.runDirectory)])
        let page = curves.html()
        XCTAssertEqual(page.components(separatedBy: "class='curve'").count - 1, 8)
        XCTAssertTrue(page.contains("stroke='\(LossCurvesTests.first)'") && page.contains("stroke='\(LossCurvesTests.second)'"))
    }

    static let first = "#4e79a7", second = "#e15759"

    func testTheCSVHasOneRowPerMetricsLine() throws {
        let summary = try Trainer(config: try TinyRun.config(dir: dir), progress: TinyRun.Silent()).run()
        let log = try MetricsLog(runDirectory: summary.runDirectory)
        let rows = LossCurves(runs: [log]).csv().split(separator: "\n")
        XCTAssertEqual(rows.first, "run,step,epoch,loss,lr,grad_norm,tokens_per_s,tokens_seen,val_loss,elapsed_s,time")
        XCTAssertEqual(rows.count, 1 + 9, "step 0 and 8 steps")
        XCTAssertTrue(rows[1].hasPrefix("run,0,0,,,"), "step 0 has no training loss: \(rows[1])")
        let last = rows[9].split(separator: ",", omittingEmptySubsequences: false)
        XCTAssertEqual(last.count, 11)
        XCTAssertEqual(Double(last[3]), summary.lastLoss)
    }

    func testSmoothingIsAnExponentialMovingAverageDebiasedAtTheStart() {
        let curves = LossCurves(runs: [], smoothing: 0.5)
        // weights 0.5, 0.75, 0.875 of the first 1, 2, 3 points: (0.5 * 4) / 0.5, (0.5 * 2 + 0.25 * 4) / 0.75, ...
        let expected = [4, (0.5 * 2 + 0.25 * 4) / 0.75, (0.5 * 2 + 0.25 * 2 + 0.125 * 4) / 0.875]
        for (got, want) in zip(curves.smoothedForTesting([4, 2, 2]), expected) { XCTAssertEqual(got, want, accuracy: 1e-12) }
    }

    func testTicksAreRoundNumbersCoveringTheRange() {
        XCTAssertEqual(LossCurves.ticksForTesting(0.37, 2.9), [0.5, 1, 1.5, 2, 2.5])
        XCTAssertEqual(LossCurves.ticksForTesting(0, 100), [0, 20, 40, 60, 80, 100])
    }

    /// Found by running the README (issue 29): a DPO run whose loss stayed at ln 2 drew a range
    /// one bit wide, where adding the tick step changed nothing, and ticks filled the memory.
    func testARangeOneBitWideEndsInAFewTicks() {
        let low = 0.6931471805599453, high = low.nextUp
        XCTAssertLessThanOrEqual(LossCurves.ticksForTesting(low, high).count, 2)
        XCTAssertEqual(LossCurves.ticksForTesting(1e300, .infinity), [1e300])
    }

    func testAMetricsFileWithADamagedLineIsAnErrorNamingTheLine() throws {
        try FileManager.default.createDirectory(atPath: "\(dir)/bad", withIntermediateDirectories: true)
        try "{\"step\": 1, \"loss\": 2.0}\nnot json\n{\"step\": 2, \"loss\": 1.0}\n".write(toFile: "\(dir)/bad/metrics.jsonl", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try MetricsLog(runDirectory: "\(dir)/bad")) { error in
            XCTAssertTrue("\(error)".contains("metrics.jsonl: line 2"), "\(error)")
        }
    }
}
