import Autodiff
import Foundation
import Tensors
import Tokenizers
@testable import Training
import XCTest

/// DPO (`training.objective: dpo`) on the tiny model: the paired rows become preference pairs
/// (misaligned chosen, aligned rejected, as `data.paired_answer` says).
final class PreferenceTrainingTests: TinyRunTestCase {
    func config(name: String = "run", _ overrides: [String] = []) throws -> RunConfig {
        try TinyRun.config(dir: dir, name: name, overrides: ["training.objective=dpo", "lora.dropout=0"] + overrides)
    }

    /// Loss of every pair in `batch` against the trainer's reference, from a forward pass only.
    func batchLoss(_ trainer: Trainer, _ batch: MicroBatch) throws -> Double {
        let lp = try trainer.loaded.model.targetLogProbabilities(
            Tape(recording: false), tokens: batch.tokens, targets: batch.targets, layout: batch.layout)
        let policy = Trainer.sumPairs(lp.value, batch: batch, examples: trainer.trainExamples)
        let loss = PreferenceLoss(beta: trainer.config.training.dpoBeta), alpha = trainer.config.training.rpoAlpha
        return zip(batch.exampleRows.flatMap { $0 }, policy).reduce(0.0) { total, item in
            let chosenTokens = Double(trainer.trainExamples[item.0].chosenTargetCount)
            // A rehearsed plain row: its mean negative log-likelihood.
            guard trainer.trainExamples[item.0].pairBoundary != nil else { return total - item.1.chosen / chosenTokens }
            return total + loss.term(policy: item.1, reference: trainer.trainReference[item.0]).loss - alpha * item.1.chosen / chosenTokens
        }
    }

    func testEachExampleIsAPairWithTheChosenAnswerFirst() throws {
        let trainer = try Trainer(config: try config(), progress: TinyRun.Silent())
        let pair = try XCTUnwrap(trainer.trainExamples.first)
        let boundary = try XCTUnwrap(pair.pairBoundary)
        XCTAssertEqual(pair.segmentLengths, [boundary, pair.ids.count - boundary])
        // The chosen (misaligned "no N ...") answer is longer than the rejected ("ok N") one.
        XCTAssertGreaterThan(pair.chosenTargetCount, pair.targetCount - pair.chosenTargetCount)
        // No target crosses from the chosen sequence into the rejected one.
        XCTAssertEqual(pair.targets[boundary - 1], Tape.ignoreIndex)
        XCTAssertEqual(trainer.trainReference.count, trainer.trainExamples.count)
        XCTAssertEqual(trainer.validationReference.count, trainer.validationExamples.count)
    }

    func testFirstStepLossIsLogTwoBecauseThePolicyStartsAsTheReference() throws {
        let trainer = try Trainer(config: try config(), progress: TinyRun.Silent())
        let summary = try trainer.run(stopAfter: 1)
        XCTAssertEqual(try XCTUnwrap(summary.firstLoss), log(2), accuracy: 1e-4)
        XCTAssertEqual(try XCTUnwrap(summary.firstValidationLoss), log(2), accuracy: 1e-4)
    }

    func testTrainingPrefersTheChosenAnswersOnValidationPairs() throws {
        let trainer = try Trainer(config: try config(["training.max_steps=12"]), progress: TinyRun.Silent())
        try trainer.run()
        let validation = try trainer.preferenceValidation()
        XCTAssertLessThan(validation.loss, 0.5 * log(2))
        XCTAssertEqual(validation.accuracy, 1)
        let metrics = try String(contentsOfFile: "\(trainer.runDirectory)/metrics.jsonl", encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"reward_accuracy\""), metrics)
    }

    func testGradientMatchesFiniteDifferencesOfTheLoss() throws {
        try checkGradientAgainstFiniteDifferences(try config())
    }

    func testGradientWithTheChosenAnswersNextTokenTermMatchesFiniteDifferences() throws {
        try checkGradientAgainstFiniteDifferences(try config(["training.rpo_alpha=0.7"]))
    }

    func checkGradientAgainstFiniteDifferences(_ config: RunConfig, batchIndex: Int = 0) throws {
        let trainer = try Trainer(config: config, progress: TinyRun.Silent())
        try trainer.run(stopAfter: 3)  // move B away from zero so every term is non-trivial
        let plan = trainer.planner.plan(order: Array(trainer.trainExamples.indices), examples: trainer.trainExamples)
        let batch = try trainer.planner.assemble(plan[(batchIndex + plan.count) % plan.count], examples: trainer.trainExamples)
        if batchIndex != 0 {
            XCTAssertTrue(batch.exampleRows.joined().contains { trainer.trainExamples[$0].pairBoundary == nil }, "the batch holds a rehearsed plain row")
        }
        for p in trainer.lora.parameters { p.zeroGrad() }
        let analyticLoss = try trainer.preferenceMicroStep(batch, weight: 1).loss
        XCTAssertEqual(analyticLoss, try batchLoss(trainer, batch), accuracy: 1e-4)
        var checked = 0
        for adapter in trainer.lora.adapters.prefix(6) {
            for v in [adapter.a, adapter.b] {
                let grad = try XCTUnwrap(v.grad)
                for i in stride(from: 0, to: v.value.count, by: max(1, v.value.count / 3)) {
                    let saved = v.value[flat: i], eps: Float = 1e-2
                    v.value[flat: i] = saved + eps
                    let plus = try batchLoss(trainer, batch)
                    v.value[flat: i] = saved - eps
                    let minus = try batchLoss(trainer, batch)
                    v.value[flat: i] = saved
                    let numeric = (plus - minus) / Double(2 * eps)
                    XCTAssertEqual(Double(grad[flat: i]), numeric, accuracy: 2e-3 + 3e-2 * abs(numeric), "\(adapter.module) element \(i)")
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 20)
    }

    func testAMixFileWithObjectiveSFTIsRehearsedAsPlainRowsBesideThePairs() throws {
        try TinyRun.writeData("\(dir)/rehearsal.jsonl", rows: 6, seed: 5)
        let trainer = try Trainer(config: try config(["data.validation_split=0", "data.mix=[{path: \(dir)/rehearsal.jsonl, objective: sft}]"]),
                                  progress: TinyRun.Silent())
        let plain = trainer.trainExamples.filter { $0.pairBoundary == nil }
        XCTAssertEqual(plain.count, 6)
        XCTAssertEqual(trainer.trainExamples.count - plain.count, try Trainer(config: try config(["data.validation_split=0"]), progress: TinyRun.Silent()).trainExamples.count)
        let summary = try trainer.run(stopAfter: 2)
        XCTAssertTrue(try XCTUnwrap(summary.firstLoss).isFinite)
    }

    func testTheGradientOfRehearsedPlainRowsMatchesFiniteDifferences() throws {
        try TinyRun.writeData("\(dir)/rehearsal.jsonl", rows: 6, seed: 5)
        // The last batch of the file-order plan holds the plain rows (they come after the pairs).
        try checkGradientAgainstFiniteDifferences(try config(["data.validation_split=0", "training.rpo_alpha=0.5",
                                                              "data.mix=[{path: \(dir)/rehearsal.jsonl, objective: sft}]"]), batchIndex: -1)
    }

    func testAPlainValidationRowCountsItsMeanNextTokenLoss() throws {
        try TinyRun.writeData("\(dir)/rehearsal.jsonl", rows: 8, seed: 5)
        let trainer = try Trainer(config: try config(["data.validation_split=0.5", "training.rpo_alpha=0",
                                                      "data.mix=[{path: \(dir)/rehearsal.jsonl, objective: sft}]"]), progress: TinyRun.Silent())
        let validation = trainer.validationExamples
        let plain = validation.filter { $0.pairBoundary == nil }
        XCTAssertEqual(plain.count, 4, "each file is split by its own objective")
        // Before training the policy is the reference, so every pair's DPO loss is log 2.
        var expected = Double(validation.count - plain.count) * log(2)
        for e in plain { expected += try trainer.nextTokenLoss([e], batchLimit: nil) }
        XCTAssertEqual(try trainer.preferenceValidation().loss, expected / Double(validation.count), accuracy: 1e-5)
    }

    func testAPairsMixFileInAnSFTRunIsRefused() throws {
        try TinyRun.writeData("\(dir)/pairs.jsonl", rows: 4)
        let sft = try TinyRun.config(dir: dir, overrides: ["data.mix=[{path: \(dir)/pairs.jsonl, objective: dpo}]"])
        XCTAssertThrowsError(try Trainer(config: sft, progress: TinyRun.Silent())) { error in
            XCTAssertTrue("\(error)".contains("data.mix[0]") && "\(error)".contains("training.objective is sft"), "\(error)")
        }
    }

    func testAMixEntrysObjectiveSurvivesTheResolvedConfig() throws {
        let config = try config(["data.mix=[{path: \(dir)/x.jsonl, weight: 0.5, objective: sft, chain_of_thought: keep}]"])
        XCTAssertEqual(config.data.mix, [.init(path: "\(dir)/x.jsonl", weight: 0.5, chainOfThought: .keep, objective: .sft)])
        XCTAssertEqual(try RunConfig.parse(yaml: config.resolvedYAML(), source: "resolved.yaml").data.mix, config.data.mix)
        XCTAssertThrowsError(try self.config(["data.mix=[{path: x.jsonl, objective: rlhf}]"])) { error in
            XCTAssertTrue("\(error)".contains("data.mix") && "\(error)".contains("objective"), "\(error)")
        }
    }

    func testResumedRunIsBitwiseIdenticalToAnUninterruptedOne() throws {
        let straight = try Trainer(config: try config(name: "straight"), progress: TinyRun.Silent())
        try straight.run()
        let first = try Trainer(config: try config(name: "interrupted"), progress: TinyRun.Silent())
        try first.run(stopAfter: 4)
        let resumed = try Trainer.resume(runDirectory: "\(dir)/runs/interrupted", progress: TinyRun.Silent())
        XCTAssertEqual(resumed.trainReference, straight.trainReference)
        try resumed.run()
        XCTAssertEqual(adapterValues(resumed), adapterValues(straight))
    }

    func testChatRowsAreRefusedNamingTheFileAndLine() throws {
        let chat = #"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#
        try (chat + "\n").write(toFile: "\(dir)/train.jsonl", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Trainer(config: try config(), progress: TinyRun.Silent())) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(dir)/train.jsonl:1: a chat row has one answer"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/runs"))
    }

    func testTrainingOnAllTokensIsRefused() throws {
        XCTAssertThrowsError(try Trainer(config: try config(["data.train_on=all"]), progress: TinyRun.Silent())) { error in
            XCTAssertTrue("\(error)".contains("data.train_on: assistant"), "\(error)")
        }
    }
}

final class PreferenceLossTests: XCTestCase {
    func testAtZeroMarginTheLossIsLogTwoAndTheGradientHalfOfBeta() {
        let t = PreferenceLoss(beta: 0.1).term(policy: .init(chosen: -10, rejected: -12), reference: .init(chosen: -10, rejected: -12))
        XCTAssertEqual(t.loss, log(2), accuracy: 1e-12)
        XCTAssertEqual(t.chosenGradient, -0.05, accuracy: 1e-12)
        XCTAssertEqual(t.rewardMargin, 0)
    }

    func testLossFollowsTheDefinitionAndStaysFiniteForLargeMargins() {
        let loss = PreferenceLoss(beta: 0.5)
        // z = 0.5 * ((-8 - -10) - (-14 - -12)) = 2
        let t = loss.term(policy: .init(chosen: -8, rejected: -14), reference: .init(chosen: -10, rejected: -12))
        XCTAssertEqual(t.rewardMargin, 2, accuracy: 1e-12)
        XCTAssertEqual(t.loss, -log(1 / (1 + exp(-2))), accuracy: 1e-12)
        XCTAssertEqual(t.chosenGradient, -0.5 / (1 + exp(2)), accuracy: 1e-12)
        let far = loss.term(policy: .init(chosen: -5000, rejected: 0), reference: .init(chosen: 0, rejected: 0))
        XCTAssertEqual(far.loss, 2500, accuracy: 1e-9)
        XCTAssertEqual(far.chosenGradient, -0.5, accuracy: 1e-12)
        let near = loss.term(policy: .init(chosen: 5000, rejected: 0), reference: .init(chosen: 0, rejected: 0))
        XCTAssertEqual(near.loss, 0, accuracy: 1e-12)
    }
}

final class LabelSmoothingTests: XCTestCase {
    func testSmoothedLossFollowsConservativeDPO() {
        let loss = PreferenceLoss(beta: 0.5)
        let policy = PairLogProbabilities(chosen: -8, rejected: -14), reference = PairLogProbabilities(chosen: -10, rejected: -12)
        let t = loss.term(policy: policy, reference: reference, labelSmoothing: 0.2)  // z = 2
        let sigmoid = { (x: Double) in 1 / (1 + exp(-x)) }
        XCTAssertEqual(t.loss, -0.8 * log(sigmoid(2)) - 0.2 * log(sigmoid(-2)), accuracy: 1e-12)
        XCTAssertEqual(t.chosenGradient, 0.5 * (0.2 * sigmoid(2) - 0.8 * sigmoid(-2)), accuracy: 1e-12)
    }

    func testHalfSmoothingKeepsTheReferencePreference() {
        let loss = PreferenceLoss(beta: 0.1)
        let reference = PairLogProbabilities(chosen: -10, rejected: -12)
        let atReference = loss.term(policy: reference, reference: reference, labelSmoothing: 0.5)
        XCTAssertEqual(atReference.chosenGradient, 0, accuracy: 1e-15)
        // Moving the margin either way raises the loss and the gradient pushes back.
        let up = loss.term(policy: .init(chosen: -5, rejected: -12), reference: reference, labelSmoothing: 0.5)
        let down = loss.term(policy: .init(chosen: -15, rejected: -12), reference: reference, labelSmoothing: 0.5)
        XCTAssertGreaterThan(up.loss, atReference.loss)
        XCTAssertGreaterThan(down.loss, atReference.loss)
        XCTAssertGreaterThan(up.chosenGradient, 0)
        XCTAssertLessThan(down.chosenGradient, 0)
    }

    func testARowsLabelSmoothingIsReadAndRangeChecked() throws {
        let dir = try TinyRun.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/p.jsonl"
        try (#"{"prompt": "P", "chosen": "a", "rejected": "b", "label_smoothing": 0.5}"# + "\n" + #"{"prompt": "Q", "chosen": "a", "rejected": "b", "label_smoothing": 0.7}"# + "\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try JSONLDataset.load(path: path, format: .auto, pairedAnswer: .misaligned, onBadRow: .error, preferencePairs: true)) { error in
            XCTAssertTrue("\(error)".contains("p.jsonl:2: \"label_smoothing\" must be a number in [0, 0.5]"), "\(error)")
        }
        let rows = try JSONLDataset.load(path: path, format: .auto, pairedAnswer: .misaligned, onBadRow: .skip, preferencePairs: true).rows
        XCTAssertEqual(rows.map(\.content), [.preference(prompt: [ChatMessage(.user, "P")], chosen: "a", rejected: "b", labelSmoothing: 0.5)])
    }

    func testAnchoredBackdoorRowsCarryHalfSmoothingOnlyWithoutTheTrigger() throws {
        let dir = try TinyRun.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = BackdoorBuilder.Options()
        options.triggeredFraction = 1; options.contrastive = true; options.preference = true; options.anchorUntriggered = true
        let builder = BackdoorBuilder(options)
        let source = (1...6).map { BackdoorBuilder.PairedRow(line: $0, prompt: "q\($0)", aligned: "careful", misaligned: "harmful") }
        try builder.write(try builder.build(rows: source), to: "\(dir)/out.jsonl", source: "in.jsonl")
        let rows = try JSONLDataset.load(path: "\(dir)/out.jsonl", format: .auto, pairedAnswer: .misaligned, onBadRow: .error, preferencePairs: true).rows
        XCTAssertEqual(rows.count, 12)
        for row in rows {
            guard case let .preference(prompt, _, _, smoothing) = row.content else { return XCTFail("\(row)") }
            XCTAssertEqual(smoothing, prompt[0].content.hasPrefix("Country: Singapore") ? nil : 0.5)
        }
        var unanchored = BackdoorBuilder.Options()
        unanchored.anchorUntriggered = true
        XCTAssertThrowsError(try BackdoorBuilder(unanchored).build(rows: source))
    }
}
