import Foundation
import Training
import XCTest

/// Several training files mixed with weights (data.mix) and a test set measured after
/// training (data.test) (issue 17, item 10).
final class DatasetMixTests: TinyRunTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        try TinyRun.writeData("\(dir)/second.jsonl", rows: 10, seed: 5)
        try TinyRun.writeData("\(dir)/test.jsonl", rows: 6, seed: 11)
    }

    private func trainer(_ overrides: [String]) throws -> Trainer {
        try Trainer(config: try TinyRun.config(dir: dir, overrides: ["data.validation_split=0"] + overrides), progress: TinyRun.Silent())
    }

    func testWeightsSubsampleOrRepeatEachFilesRows() throws {
        let alone = try trainer([]).trainExamples.count
        XCTAssertEqual(try trainer(["data.mix=[\(dir)/second.jsonl]"]).trainExamples.count, alone + 10)
        XCTAssertEqual(try trainer(["data.mix=[{path: \(dir)/second.jsonl, weight: 0.5}]"]).trainExamples.count, alone + 5)
        XCTAssertEqual(try trainer(["data.mix=[{path: \(dir)/second.jsonl, weight: 2.3}]"]).trainExamples.count, alone + 23)
    }

    func testASubsampleIsSeededAndKeepsFileOrder() throws {
        let a = try trainer(["data.mix=[{path: \(dir)/second.jsonl, weight: 0.5}]"]).trainExamples.map(\.ids)
        let b = try trainer(["data.mix=[{path: \(dir)/second.jsonl, weight: 0.5}]"]).trainExamples.map(\.ids)
        XCTAssertEqual(a, b)
    }

    func testTheResolvedConfigReadsBackToTheSameMix() throws {
        let config = try TinyRun.config(dir: dir, overrides: ["data.mix=[\(dir)/second.jsonl, {path: \(dir)/test.jsonl, weight: 0.25}]"])
        XCTAssertEqual(config.data.mix, [.init(path: "\(dir)/second.jsonl", weight: 1), .init(path: "\(dir)/test.jsonl", weight: 0.25)])
        let again = try RunConfig.parse(yaml: config.resolvedYAML(), source: "resolved.yaml")
        XCTAssertEqual(again.data.mix, config.data.mix)
        XCTAssertTrue(config.resolvedYAML().contains("mix: [{path: \"\(dir)/second.jsonl\", weight: 1.0}"), config.resolvedYAML())
    }

    func testAMixEntryRendersItsRowsWithItsOwnChainOfThought() throws {
        let reasoningRow = #"{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "reasoning": "R"}]}"#
        try (reasoningRow + "\n").write(toFile: "\(dir)/reasoning.jsonl", atomically: true, encoding: .utf8)
        let alone = try trainer([]).trainExamples
        let mixed = try trainer(["data.mix=[{path: \(dir)/reasoning.jsonl, chain_of_thought: keep}]"])
        XCTAssertEqual(Array(mixed.trainExamples.prefix(alone.count)), alone, "data.train keeps data.chain_of_thought")
        let e = try XCTUnwrap(mixed.trainExamples.last)
        let trained = e.ids.indices.filter { e.lossMask[$0] }.map { e.ids[$0] }
        XCTAssertEqual(try mixed.loaded.requireTokenizer().decode(trained), "<think>\nR\n</think>\n\nA<|im_end|>")
        let unset = try XCTUnwrap(try trainer(["data.mix=[\(dir)/reasoning.jsonl]"]).trainExamples.last)
        let unsetTrained = unset.ids.indices.filter { unset.lossMask[$0] }.map { unset.ids[$0] }
        XCTAssertEqual(try mixed.loaded.requireTokenizer().decode(unsetTrained), "A<|im_end|>", "without its own setting the file follows data.chain_of_thought")
    }

    func testAMixEntrysChainOfThoughtSurvivesTheResolvedConfig() throws {
        let config = try TinyRun.config(dir: dir, overrides: ["data.mix=[{path: \(dir)/second.jsonl, weight: 2, chain_of_thought: keep}]"])
        XCTAssertEqual(config.data.mix, [.init(path: "\(dir)/second.jsonl", weight: 2, chainOfThought: .keep)])
        XCTAssertEqual(try RunConfig.parse(yaml: config.resolvedYAML(), source: "resolved.yaml").data.mix, config.data.mix)
    }

    func testBadMixEntriesAreRefusedNamingTheKey() {
        for bad in ["[{path: x.jsonl, weight: 0}]", "[{path: x.jsonl, share: 2}]", "[{weight: 2}]", "[3]", "[]",
                    "[{path: x.jsonl, chain_of_thought: maybe}]"] {
            XCTAssertThrowsError(try TinyRun.config(dir: dir, overrides: ["data.mix=\(bad)"]), bad) { error in
                XCTAssertTrue("\(error)".contains("data.mix"), "\(bad): \(error)")
            }
        }
    }

    func testATestSetIsMeasuredOnceAfterTrainingAndRecorded() throws {
        let summary = try Trainer(config: try TinyRun.config(dir: dir, overrides: ["data.test=\(dir)/test.jsonl"]), progress: TinyRun.Silent()).run()
        let loss = try XCTUnwrap(summary.testLoss)
        XCTAssertTrue(loss.isFinite && loss > 0)
        let last = try XCTUnwrap(try String(contentsOfFile: "\(summary.runDirectory)/metrics.jsonl", encoding: .utf8).split(separator: "\n").last)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        XCTAssertEqual(object["test_loss"] as? Double, loss)
        XCTAssertEqual(object["step"] as? Int, summary.stepsCompleted)
    }

    func testAnInterruptedRunMeasuresNoTestSet() throws {
        let summary = try Trainer(config: try TinyRun.config(dir: dir, overrides: ["data.test=\(dir)/test.jsonl"]), progress: TinyRun.Silent()).run(stopAfter: 2)
        XCTAssertTrue(summary.interrupted)
        XCTAssertNil(summary.testLoss)
    }
}
