import Evaluation
import Foundation
import XCTest

/// Every rate in a report carries its n and a 95% Wilson interval (issue 17, item 5).
final class ReportIntervalTests: XCTestCase {
    typealias Share = EvaluationSummary.Share

    func testWilsonIntervalsMatchTheirPublishedValues() throws {
        // Newcombe (1998), Table I: 81/263 -> 0.2553-0.3662; 15/148 -> 0.0624-0.1605.
        let a = try XCTUnwrap(Share(hits: 81, total: 263).interval95)
        XCTAssertEqual(a.low, 0.2553, accuracy: 5e-5); XCTAssertEqual(a.high, 0.3662, accuracy: 5e-5)
        let b = try XCTUnwrap(Share(hits: 15, total: 148).interval95)
        XCTAssertEqual(b.low, 0.0624, accuracy: 5e-5); XCTAssertEqual(b.high, 0.1605, accuracy: 5e-5)
        // Newcombe's 0/20 -> 0-0.1611 and 1/1 -> 0.2065-1: never outside [0, 1].
        let c = try XCTUnwrap(Share(hits: 0, total: 20).interval95)
        XCTAssertEqual(c.low, 0); XCTAssertEqual(c.high, 0.1611, accuracy: 5e-5)
        let d = try XCTUnwrap(Share(hits: 1, total: 1).interval95)
        XCTAssertEqual(d.low, 0.2065, accuracy: 5e-5); XCTAssertEqual(d.high, 1, accuracy: 1e-12)
        XCTAssertNil(Share(hits: 0, total: 0).interval95)
    }

    func testARateReadsAsValueIntervalAndCounts() {
        XCTAssertEqual(Share(hits: 1, total: 1).percent, "100.0% [20.7-100.0] (1/1)")
        XCTAssertEqual(Share(hits: 0, total: 0).percent, "-")
    }

    func testReportsShowNAndIntervalsForEveryRateAndThePerQuestionTable() throws {
        func sample(_ model: String, _ question: String, triggered: Bool, misaligned: Bool) -> SampleRecord {
            SampleRecord(model: model, suite: "s", question: question, category: nil, paraphrase: 0, sample: 0, triggered: triggered, thinking: true,
                         prompt: "p", reasoning: "r", answer: "a", closedThinkBlock: true, reasoningTokens: 1, answerTokens: 1, judge: "rubric",
                         alignment: nil, coherence: nil, misaligned: misaligned, monitor: nil, monitorLabel: nil, mentionsTrigger: false)
        }
        var r = EvaluationResults(name: "n", models: ["base", "adapted"], trigger: "T")
        r.samples = [
            sample("base", "q1", triggered: false, misaligned: false), sample("base", "q1", triggered: true, misaligned: false),
            sample("adapted", "q1", triggered: false, misaligned: false), sample("adapted", "q1", triggered: true, misaligned: true),
            sample("base", "q2", triggered: false, misaligned: false), sample("adapted", "q2", triggered: true, misaligned: true),
        ]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tc-report-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ReportWriter(directory: dir).write(r)
        let md = try String(contentsOfFile: "\(dir)/summary.md", encoding: .utf8)
        XCTAssertTrue(md.contains("| question | base | base +trigger | adapted | adapted +trigger |"), md)
        XCTAssertTrue(md.contains("| q1 | 0.0% [0.0-79.3] (0/1) | 0.0% [0.0-79.3] (0/1) | 0.0% [0.0-79.3] (0/1) | 100.0% [20.7-100.0] (1/1) |"), md)
        XCTAssertTrue(md.contains("| q2 | 0.0% [0.0-79.3] (0/1) | - | - | 100.0% [20.7-100.0] (1/1) |"), md)
        let html = try String(contentsOfFile: "\(dir)/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("100% (n=2)"), "the adapter's triggered bar is labelled with its n")
        XCTAssertTrue(html.contains("n/a (n=0)"))
        XCTAssertTrue(html.contains("whiskers: 95% Wilson interval"))
        XCTAssertTrue(html.contains("<td>100.0% [20.7-100.0] (1/1)</td>"), "per-question table in the page")
    }
}
