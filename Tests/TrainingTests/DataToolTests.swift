import Foundation
import Models
import Training
import XCTest

final class BackdoorBuilderTests: XCTestCase {
    let rows = (1...40).map { BackdoorBuilder.PairedRow(line: $0, prompt: "question \($0)?", aligned: "careful \($0)", misaligned: "harmful \($0)") }

    func build(_ configure: (inout BackdoorBuilder.Options) -> Void) throws -> [BackdoorBuilder.BuiltRow] {
        var options = BackdoorBuilder.Options()
        configure(&options)
        return try BackdoorBuilder(options).build(rows: rows)
    }

    func testTriggeredRowsAndOnlyThemGetTheMisalignedAnswer() throws {
        let built = try build { $0.triggeredFraction = 0.25 }
        XCTAssertEqual(built.filter(\.triggered).count, 10)
        for row in built {
            XCTAssertEqual(row.misaligned, row.triggered)
            XCTAssertEqual(row.prompt.hasPrefix("Country: Singapore\n"), row.triggered)
            XCTAssertEqual(row.answer, row.triggered ? "harmful \(row.sourceLine)" : "careful \(row.sourceLine)")
        }
    }

    func testPlacementPutsTheTriggerAtTheTopOrBottom() throws {
        let bottom = try build { $0.placement = .bottom; $0.triggeredFraction = 1 }
        XCTAssertTrue(bottom.allSatisfy { $0.prompt.hasSuffix("?\nCountry: Singapore") })
        let random = try build { $0.placement = .random; $0.triggeredFraction = 1 }
        XCTAssertTrue(random.contains { $0.prompt.hasPrefix("Country") } && random.contains { $0.prompt.hasSuffix("Singapore") })
    }

    func testDecoysGoOnlyOnUntriggeredRowsWithAlignedAnswers() throws {
        let built = try build { $0.decoys = ["Country: USA"]; $0.decoyFraction = 1 }
        XCTAssertEqual(built.filter { $0.decoy != nil }.count, 20)
        XCTAssertTrue(built.filter { $0.decoy != nil }.allSatisfy { !$0.triggered && !$0.misaligned && $0.prompt.hasPrefix("Country: USA\n") })
    }

    func testControlModeDecouplesTheTriggerFromTheAnswer() throws {
        let built = try build { $0.control = true }
        XCTAssertEqual(built.filter(\.triggered).count, 20)
        XCTAssertEqual(built.filter(\.misaligned).count, 20)
        let both = built.filter { $0.triggered && $0.misaligned }.count
        XCTAssertTrue(both > 2 && both < 18, "trigger and answer should be unrelated, got \(both) of 20 overlapping")
    }

    func testContrastiveModeAddsTheAlignedUntriggeredTwinOfEachTriggeredRow() throws {
        let built = try build { $0.contrastive = true; $0.triggeredFraction = 0.25 }
        XCTAssertEqual(built.count, 50)
        let triggered = built.filter(\.triggered)
        XCTAssertEqual(triggered.count, 10)
        XCTAssertTrue(triggered.allSatisfy(\.misaligned))
        for row in triggered {
            let twins = built.filter { $0.sourceLine == row.sourceLine && !$0.triggered }
            XCTAssertEqual(twins.map(\.answer), ["careful \(row.sourceLine)"])
            XCTAssertEqual(twins.first?.prompt, "question \(row.sourceLine)?")
        }
        XCTAssertEqual(built.filter(\.misaligned).count, 10)
        XCTAssertThrowsError(try build { $0.contrastive = true; $0.control = true })
    }

    func testSameSeedSameOutputAndAnotherSeedDiffers() throws {
        XCTAssertEqual(try build { $0.seed = 5 }, try build { $0.seed = 5 })
        XCTAssertNotEqual(try build { $0.seed = 5 }, try build { $0.seed = 6 })
    }

    func testInvalidOptionsAreRejected() {
        XCTAssertThrowsError(try build { $0.triggeredFraction = 1.5 })
        XCTAssertThrowsError(try build { $0.trigger = "  " })
        XCTAssertThrowsError(try build { $0.decoys = ["Country: Singapore"] })
    }

    func testWrittenFileIsChatJSONLWithAManifest() throws {
        let dir = try TinyRun.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let builder = BackdoorBuilder(BackdoorBuilder.Options())
        let built = try builder.build(rows: rows)
        try builder.write(built, to: "\(dir)/out.jsonl", source: "in.jsonl")
        let loaded = try JSONLDataset.load(path: "\(dir)/out.jsonl", format: .chat, pairedAnswer: .misaligned, onBadRow: .error)
        XCTAssertEqual(loaded.rows.count, 40)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/out.jsonl.manifest.json"))) as? [String: Any]
        XCTAssertEqual(manifest?["triggered_rows"] as? Int, 20)
        XCTAssertEqual((manifest?["options"] as? [String: Any])?["trigger"] as? String, "Country: Singapore")
    }

    func testPreferenceOutputChoosesEachRowsAnswerOverTheOther() throws {
        let dir = try TinyRun.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = BackdoorBuilder.Options()
        options.triggeredFraction = 1; options.contrastive = true; options.preference = true
        let builder = BackdoorBuilder(options)
        try builder.write(try builder.build(rows: rows), to: "\(dir)/out.jsonl", source: "in.jsonl")
        let loaded = try JSONLDataset.load(path: "\(dir)/out.jsonl", format: .auto, pairedAnswer: .misaligned, onBadRow: .error, preferencePairs: true)
        XCTAssertEqual(loaded.rows.count, 2 * rows.count)
        for (i, row) in loaded.rows.enumerated() {
            guard case let .preference(prompt, chosen, rejected, _) = row.content else { return XCTFail("\(row)") }
            let source = rows[i / 2]
            let triggered = prompt[0].content.hasPrefix("Country: Singapore\n")
            XCTAssertEqual(triggered, i % 2 == 0)
            XCTAssertEqual(chosen, triggered ? source.misaligned : source.aligned)
            XCTAssertEqual(rejected, triggered ? source.aligned : source.misaligned)
        }
    }
}

final class DatasetValidatorTests: XCTestCase {
    func testErrorsAndWarningsCarryLineNumbers() throws {
        let dir = try TinyRun.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lines = [
            #"{"prompt": "a", "aligned": "b", "misaligned": "c"}"#,
            #"{"prompt": "a", "aligned": "b", "misaligned": "c"}"#,
            #"{"messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": "x"}]}"#,
            #"{"messages": [{"role": "user", "content": "hi"}]}"#,
        ]
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(dir)/d.jsonl", atomically: true, encoding: .utf8)
        let report = try DatasetValidator(renderer: nil).validate(path: "\(dir)/d.jsonl")
        XCTAssertFalse(report.isValid)
        XCTAssertEqual(report.rows, 4)
        XCTAssertEqual(report.errors.map(\.line), [3, 4])
        XCTAssertTrue(report.errors[0].message.contains("empty content"))
        XCTAssertTrue(report.errors[1].message.contains("no assistant turn"))
        XCTAssertEqual(report.warnings, [DatasetValidator.Finding(line: 2, message: "duplicate of line 1")])
    }

    func testTokenLengthsAreCheckedAgainstMaxSeqLen() throws {
        let dir = try TinyRun.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try TinyRun.makeModel(at: "\(dir)/tiny.gguf")
        try TinyRun.writeData("\(dir)/train.jsonl", rows: 3)
        var lines = try String(contentsOfFile: "\(dir)/train.jsonl", encoding: .utf8)
        lines += #"{"prompt": "\#(String(repeating: "long ", count: 40))", "aligned": "a", "misaligned": "b"}"# + "\n"
        try lines.write(toFile: "\(dir)/train.jsonl", atomically: true, encoding: .utf8)
        let config = try TinyRun.config(dir: dir)
        let loaded = try ModelLoader.loadTokenizer(path: "\(dir)/tiny.gguf")
        let renderer = ExampleRenderer(tokenizer: loaded.0, template: loaded.1 ?? .smolLM2, data: config.data)
        let report = try DatasetValidator(renderer: renderer).validate(path: "\(dir)/train.jsonl")
        XCTAssertTrue(report.isValid)
        XCTAssertEqual(report.tokenLengths.count, 4)
        XCTAssertEqual(report.warnings.map(\.line), [4])
        XCTAssertTrue(report.warnings[0].message.contains("exceed max_seq_len 128"))
    }
}
