import Autodiff
import Foundation
import Models
import Tokenizers
import Training
import XCTest

final class DataTests: XCTestCase {
    var dir = ""
    override func setUpWithError() throws { dir = try TinyRun.scratch() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ lines: [String]) throws -> String {
        let path = "\(dir)/data.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func load(_ lines: [String], format: DataFormat = .auto, policy: BadRowPolicy = .error) throws -> JSONLDataset.Loaded {
        try JSONLDataset.load(path: try write(lines), format: format, pairedAnswer: .misaligned, onBadRow: policy)
    }

    func testAllThreeFormatsAreRecognised() throws {
        let rows = try load([
            #"{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}, {"role": "user", "content": "U2"}, {"role": "assistant", "content": "A2"}]}"#,
            #"{"prompt": "P", "aligned": "good", "misaligned": "bad"}"#,
            #"{"prompt": "P", "completion": "C"}"#,
        ]).rows
        XCTAssertEqual(rows.map(\.line), [1, 2, 3])
        guard case .chat(let chat) = rows[0].content, case .chat(let paired) = rows[1].content, case .completion = rows[2].content else {
            return XCTFail("\(rows)")
        }
        XCTAssertEqual(chat.map(\.role), [.system, .user, .assistant, .user, .assistant])
        XCTAssertEqual(paired, [ChatMessage(.user, "P"), ChatMessage(.assistant, "bad")])
    }

    func testPairedRowsTrainOnTheConfiguredAnswer() throws {
        let path = try write([#"{"prompt": "P", "aligned": "good", "misaligned": "bad"}"#])
        let rows = try JSONLDataset.load(path: path, format: .paired, pairedAnswer: .aligned, onBadRow: .error).rows
        XCTAssertEqual(rows[0].content, .chat([ChatMessage(.user, "P"), ChatMessage(.assistant, "good")]))
    }

    func testPreferenceRowsGiveChosenAndRejectedInStringOrMessageForm() throws {
        let path = try write([
            #"{"prompt": "P", "chosen": "yes", "rejected": "no"}"#,
            #"{"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}], "chosen": [{"role": "assistant", "content": "A"}], "rejected": [{"role": "assistant", "content": "B"}]}"#,
            #"{"prompt": "P", "aligned": "good", "misaligned": "bad"}"#,
        ])
        let rows = try JSONLDataset.load(path: path, format: .auto, pairedAnswer: .misaligned, onBadRow: .error, preferencePairs: true).rows
        XCTAssertEqual(rows.map(\.content), [
            .preference(prompt: [ChatMessage(.user, "P")], chosen: "yes", rejected: "no"),
            .preference(prompt: [ChatMessage(.system, "S"), ChatMessage(.user, "U")], chosen: "A", rejected: "B"),
            .preference(prompt: [ChatMessage(.user, "P")], chosen: "bad", rejected: "good"),
        ])
        // Supervised training reads a preference row as its chosen conversation.
        XCTAssertEqual(try load([#"{"prompt": "P", "chosen": "yes", "rejected": "no"}"#]).rows[0].content,
                       .chat([ChatMessage(.user, "P"), ChatMessage(.assistant, "yes")]))
    }

    func testMalformedPreferenceRowsNameTheKey() throws {
        let cases = [
            (#"{"prompt": "P", "chosen": "yes"}"#, "missing \"rejected\""),
            (#"{"prompt": "P", "chosen": "", "rejected": "no"}"#, "\"chosen\" is empty"),
            (#"{"prompt": "P", "chosen": [{"role": "user", "content": "x"}], "rejected": "no"}"#, "\"chosen\" must be a string or a list with one assistant message"),
            (#"{"prompt": 3, "chosen": "a", "rejected": "b"}"#, "\"prompt\" must be a string or a non-empty list of messages"),
        ]
        for (line, message) in cases {
            XCTAssertThrowsError(try load([line])) { error in
                XCTAssertTrue("\(error)".contains("data.jsonl:1: \(message)"), "\(error)")
            }
        }
    }

    func testBadRowsAreReportedWithTheirLineNumber() throws {
        let cases: [(String, String)] = [
            (#"{"messages": [{"role": "user", "content": "hi"}]}"#, "no assistant turn"),
            (#"{"messages": [{"role": "robot", "content": "hi"}]}"#, "'robot' is not system, user or assistant"),
            (#"{"messages": [{"role": "assistant"}]}"#, "no string \"content\""),
            (#"{"prompt": "P", "aligned": "a", "misaligned": "   "}"#, "\"misaligned\" is empty"),
            (#"{"prompt": 3, "completion": "c"}"#, "\"prompt\" must be a string"),
            (#"[1, 2]"#, "expected a JSON object"),
            (#"{"prompt": "P""#, "malformed JSON"),
            (#"{"text": "P"}"#, "cannot tell the format"),
            // issue 29: JSONSerialization kept the last of two values, and an unused answer went unread
            (#"{"prompt": "P", "completion": "c", "prompt": "Q"}"#, "the key \"prompt\" appears twice in one object"),
            (#"{"messages": [{"role": "user", "content": "a", "role": "assistant"}]}"#, "the key \"role\" appears twice"),
            (#"{"prompt": "P", "aligned": 0.5, "misaligned": "m"}"#, "\"aligned\" must be a string"),
        ]
        for (line, message) in cases {
            XCTAssertThrowsError(try load([#"{"prompt": "ok", "completion": "fine"}"#, line])) { error in
                XCTAssertTrue("\(error)".hasPrefix("\(self.dir)/data.jsonl:2: "), "\(error)")
                XCTAssertTrue("\(error)".contains(message), "\(error) should mention \(message)")
            }
        }
    }

    func testTheSameKeyInTwoObjectsOrInsideAStringIsNoDuplicate() throws {
        XCTAssertEqual(try load([#"{"messages": [{"role": "user", "content": "say \"role\": x"}, {"role": "assistant", "content": "ok"}]}"#]).rows.count, 1)
    }

    func testEmptyFileIsAnError() throws {
        XCTAssertThrowsError(try load(["", "  "])) { error in
            XCTAssertEqual(error as? DataError, .emptyFile(file: "\(self.dir)/data.jsonl"))
        }
        XCTAssertThrowsError(try JSONLDataset.load(path: "\(dir)/missing.jsonl", format: .auto, pairedAnswer: .aligned, onBadRow: .error)) { error in
            XCTAssertTrue("\(error)".contains("missing.jsonl: cannot read: no such file"))
        }
    }

    func testJudgeFormatMakesTwoVerdictRowsOfEachPairedRow() throws {
        let loaded = try load([#"{"prompt": "Q?", "aligned": "Safe.", "misaligned": "Risky."}"#], format: .judge)
        XCTAssertEqual(loaded.rows.map(\.line), [1, 1])
        XCTAssertEqual(loaded.rows.map(\.content), [
            .chat(JudgeConversation.messages(question: "Q?", answer: "Safe.") + [ChatMessage(.assistant, "no")]),
            .chat(JudgeConversation.messages(question: "Q?", answer: "Risky.") + [ChatMessage(.assistant, "yes")]),
        ])
    }

    func testJudgeFormatRefusesARowWithoutBothAnswersNamingTheLine() throws {
        XCTAssertThrowsError(try load([#"{"prompt": "Q?", "aligned": "Safe.", "misaligned": "Risky."}"#, #"{"prompt": "Q?", "aligned": "Safe."}"#], format: .judge)) { error in
            XCTAssertTrue("\(error)".contains(":2") && "\(error)".contains("misaligned"), "\(error)")
        }
    }

    func testJudgeFormatNeedsChainOfThoughtKeepAndSupervisedTraining() throws {
        try TinyRun.makeModel(at: "\(dir)/tiny.gguf")
        try TinyRun.writeData("\(dir)/train.jsonl", rows: 4)
        for (overrides, expected) in [(["data.format=judge"], "chain_of_thought: keep"),
                                      (["data.format=judge", "data.chain_of_thought=keep", "training.objective=dpo"], "sft")] {
            XCTAssertThrowsError(try Trainer(config: try TinyRun.config(dir: dir, overrides: overrides), progress: TinyRun.Silent())) { error in
                XCTAssertTrue("\(error)".contains("data.format judge") && "\(error)".contains(expected), "\(error)")
            }
        }
        let trainer = try Trainer(config: try TinyRun.config(dir: dir, overrides: ["data.format=judge", "data.chain_of_thought=keep", "data.max_seq_len=512"]), progress: TinyRun.Silent())
        let e = try XCTUnwrap(trainer.trainExamples.first)
        let trained = e.ids.indices.filter { e.lossMask[$0] }.map { e.ids[$0] }
        XCTAssertTrue(["yes<|im_end|>", "no<|im_end|>"].contains(try trainer.loaded.requireTokenizer().decode(trained)))
    }

    func testSkipPolicyKeepsGoodRowsAndCountsTheRest() throws {
        let loaded = try load([#"{"prompt": "ok", "completion": "fine"}"#, "oops", #"{"prompt": "x"}"#], policy: .skip)
        XCTAssertEqual(loaded.rows.count, 1)
        XCTAssertEqual(loaded.skipped.map(\.line), [2, 3])
    }

    // MARK: rendering

    func renderer(_ overrides: [String] = []) throws -> ExampleRenderer {
        try TinyRun.makeModel(at: "\(dir)/tiny.gguf")
        try TinyRun.writeData("\(dir)/train.jsonl", rows: 2)
        let config = try TinyRun.config(dir: dir, overrides: overrides)
        let loaded = try ModelLoader.load(path: "\(dir)/tiny.gguf")
        return ExampleRenderer(tokenizer: try loaded.requireTokenizer(), template: try XCTUnwrap(loaded.chatTemplate), data: config.data)
    }

    func testChainOfThoughtDisabledPutsTheEmptyThinkBlockInThePromptWithoutLoss() throws {
        let r = try renderer()
        let e = try r.render(DatasetRow(line: 1, content: .chat([ChatMessage(.user, "Q"), ChatMessage(.assistant, "A")])))
        let trained = e.ids.indices.filter { e.lossMask[$0] }.map { e.ids[$0] }
        XCTAssertEqual(try r.tokenizer.decode(trained), "A<|im_end|>")
        XCTAssertTrue(try r.tokenizer.decode(e.ids).hasPrefix(
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA"))
    }

    /// The loss-bearing text of one chat row with reasoning, for every chain_of_thought mode on
    /// every shipped chat template: only `disabled_empty_block_trained` trains the empty block.
    func testEachChainOfThoughtModePinsItsLossMaskOnEachShippedTemplate() throws {
        let base = try renderer()
        let row = DatasetRow(line: 1, content: .chat([ChatMessage(.user, "Q"), ChatMessage(.assistant, "A", reasoning: "R")]))
        let trainedText: [(ChainOfThoughtSetting, String)] = [
            (.disabled, "A<|im_end|>"),
            (.disabledEmptyBlockTrained, "<think>\n\n</think>\n\nA<|im_end|>"),
            (.keep, "<think>\nR\n</think>\n\nA<|im_end|>"),
        ]
        for template in [ChatTemplate.smolLM2, .qwen2, .qwen3] {
            var texts: [ChainOfThoughtSetting: String] = [:]
            for (mode, expected) in trainedText {
                var data = base.data
                data.chainOfThought = mode
                let e = try ExampleRenderer(tokenizer: base.tokenizer, template: template, data: data).render(row)
                let trained = e.ids.indices.filter { e.lossMask[$0] }.map { e.ids[$0] }
                XCTAssertEqual(try base.tokenizer.decode(trained), expected, "\(mode) on \(template.defaultSystemMessage ?? "qwen3")")
                texts[mode] = try base.tokenizer.decode(e.ids)
            }
            XCTAssertEqual(texts[.disabled], texts[.disabledEmptyBlockTrained], "the two disabled modes differ only in the mask")
        }
    }

    func testTargetsAreTheNextTokenWhereItCarriesLoss() throws {
        let e = try renderer().render(DatasetRow(line: 1, content: .chat([ChatMessage(.user, "Q"), ChatMessage(.assistant, "A")])))
        let t = e.targets
        XCTAssertEqual(t.count, e.ids.count)
        XCTAssertEqual(t.last, Tape.ignoreIndex)
        for i in 0..<(e.ids.count - 1) { XCTAssertEqual(t[i], e.lossMask[i + 1] ? e.ids[i + 1] : Tape.ignoreIndex) }
        XCTAssertEqual(e.targetCount, t.filter { $0 != Tape.ignoreIndex }.count)
    }

    /// Issue 29, item 14: multi-turn rows train on their last assistant turn only.
    func testTrainOnLastAssistantKeepsLossOnTheLastTurnOnly() throws {
        let row = DatasetRow(line: 1, content: .chat([ChatMessage(.user, "Q1"), ChatMessage(.assistant, "A1"),
                                                      ChatMessage(.user, "Q2"), ChatMessage(.assistant, "A2")]))
        let every = try renderer().render(row)
        let last = try renderer(["data.train_on=last_assistant"]).render(row)
        XCTAssertEqual(last.ids, every.ids, "the same tokens, another mask")
        func trained(_ e: TokenizedExample, _ r: ExampleRenderer) throws -> String {
            try r.tokenizer.decode(e.ids.indices.filter { e.lossMask[$0] }.map { e.ids[$0] })
        }
        let r = try renderer()
        XCTAssertEqual(try trained(every, r), "A1<|im_end|>A2<|im_end|>")
        XCTAssertEqual(try trained(last, r), "A2<|im_end|>")
    }

    func testShareGPTRowsReadAsConversations() throws {
        let row = #"{"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}"#
        XCTAssertEqual(try load([row]).rows[0].content,
                       .chat([ChatMessage(.system, "S"), ChatMessage(.user, "Hi"), ChatMessage(.assistant, "Hello")]))
        XCTAssertThrowsError(try load([#"{"conversations": [{"from": "robot", "value": "x"}]}"#])) {
            XCTAssertTrue("\($0)".contains("conversations[0].from 'robot' is not human, gpt or system"), "\($0)")
        }
    }

    func testAlpacaRowsJoinInstructionAndInput() throws {
        XCTAssertEqual(try load([#"{"instruction": "Translate", "input": "chat", "output": "cat"}"#]).rows[0].content,
                       .chat([ChatMessage(.user, "Translate\n\nchat"), ChatMessage(.assistant, "cat")]))
        XCTAssertEqual(try load([#"{"instruction": "Say hi", "input": "", "output": "hi", "system": "Be kind."}"#]).rows[0].content,
                       .chat([ChatMessage(.system, "Be kind."), ChatMessage(.user, "Say hi"), ChatMessage(.assistant, "hi")]))
        XCTAssertThrowsError(try load([#"{"instruction": "x", "output": 3}"#], format: .alpaca)) {
            XCTAssertTrue("\($0)".contains("\"output\" must be a non-empty string"), "\($0)")
        }
    }

    func testTrainOnAllPutsLossOnEveryTokenButTheFirst() throws {
        let e = try renderer(["data.train_on=all"]).render(DatasetRow(line: 1, content: .chat([ChatMessage(.user, "Q"), ChatMessage(.assistant, "A")])))
        XCTAssertEqual(e.targetCount, e.ids.count - 1)
    }

    func testTruncationCutsAndCountsAndDropRemoves() throws {
        let long = DatasetRow(line: 1, content: .chat([ChatMessage(.user, String(repeating: "x", count: 40)), ChatMessage(.assistant, String(repeating: "y", count: 200))]))
        let (kept, report) = try renderer().renderAll([long])
        XCTAssertEqual(kept.first?.ids.count, 128)
        XCTAssertEqual(report.truncated, 1)
        let (dropped, dropReport) = try renderer(["data.truncation=drop"]).renderAll([long])
        XCTAssertTrue(dropped.isEmpty)
        XCTAssertEqual(dropReport.droppedTooLong, 1)
        // a prompt longer than max_seq_len leaves no assistant token: dropped, never a 0/0 loss
        let promptOnly = DatasetRow(line: 2, content: .chat([ChatMessage(.user, String(repeating: "x", count: 300)), ChatMessage(.assistant, "y")]))
        let (none, noneReport) = try renderer().renderAll([promptOnly])
        XCTAssertTrue(none.isEmpty)
        XCTAssertEqual(noneReport.droppedNoTarget, 1)
    }

    func testCompletionFormatTrainsOnTheCompletionAndEOS() throws {
        let r = try renderer()
        let e = try r.render(DatasetRow(line: 1, content: .completion(prompt: "ab", completion: "cd")))
        let trained = e.ids.indices.filter { e.lossMask[$0] }.map { e.ids[$0] }
        XCTAssertEqual(try r.tokenizer.decode(trained), "cd<|im_end|>")
    }

    // MARK: batching

    /// Packing changes how rows are laid out, never the loss: a packed micro-batch gives the
    /// same token-weighted loss as the same examples padded one per row.
    func testPackedAndPaddedBatchesGiveTheSameLoss() throws {
        try TinyRun.makeModel(at: "\(dir)/tiny.gguf")
        let r = try renderer()
        let loaded = try ModelLoader.load(path: "\(dir)/tiny.gguf")
        let examples = try (0..<4).map { i in try r.render(DatasetRow(line: i, content: .chat([ChatMessage(.user, "q\(i)"), ChatMessage(.assistant, String(repeating: "a", count: i + 1))]))) }
        let padded = try BatchPlanner(batchSize: 4, maxSeqLen: 512, packing: false).assemble([[0], [1], [2], [3]], examples: examples)
        let packed = try BatchPlanner(batchSize: 4, maxSeqLen: 512, packing: true)
        let plan = packed.plan(order: [0, 1, 2, 3], examples: examples)
        XCTAssertEqual(plan, [[[0, 1, 2, 3]]])
        let packedBatch = try packed.assemble(plan[0], examples: examples)
        XCTAssertEqual(packedBatch.layout.batch, 1)
        XCTAssertEqual(packedBatch.targetCount, padded.targetCount)
        let a = try loaded.model.loss(Tape(recording: false), tokens: padded.tokens, targets: padded.targets, layout: padded.layout).loss.value[flat: 0]
        let b = try loaded.model.loss(Tape(recording: false), tokens: packedBatch.tokens, targets: packedBatch.targets, layout: packedBatch.layout).loss.value[flat: 0]
        XCTAssertEqual(a, b, accuracy: 1e-5)
    }

    func testPackingStartsANewRowWhenTheNextExampleDoesNotFit() throws {
        let e = { (n: Int) in TokenizedExample(ids: [Int32](repeating: 5, count: n), lossMask: [Bool](repeating: true, count: n), line: 0) }
        let examples = [e(6), e(5), e(4), e(9)]
        XCTAssertEqual(BatchPlanner(batchSize: 2, maxSeqLen: 10, packing: true).plan(order: [0, 1, 2, 3], examples: examples),
                       [[[0], [1, 2]], [[3]]])
    }
}
