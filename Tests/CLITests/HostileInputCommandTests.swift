import Foundation
import XCTest

/// Defects a hostile audit found in the release binary (issue 29): inputs that are not regular
/// files, a file-size limit, two writers on one run, and a checkpoint reader outliving its parent.
final class HostileInputCommandTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tc-cli-hostile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if !dir.isEmpty { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// Starts the CLI without waiting; stdout and stderr go to files in `dir`.
    private func start(_ arguments: [String], environment extra: [String: String] = [:], name: String) throws -> Process {
        let process = Process()
        process.executableURL = try CLI.binary()
        process.arguments = arguments
        process.currentDirectoryURL = CLI.packageRoot
        process.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        FileManager.default.createFile(atPath: "\(dir)/\(name).err", contents: nil)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: "\(dir)/\(name).err")
        try process.run()
        return process
    }

    /// Waits up to `seconds` for `process`; kills it and fails when it is still running.
    private func finish(_ process: Process, within seconds: Double, _ what: String) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            XCTFail("\(what) was still running after \(seconds) s")
            return false
        }
        return true
    }

    private func fifo(_ name: String) throws -> String {
        let path = "\(dir)/\(name)"
        guard mkfifo(path, 0o600) == 0 else { throw XCTSkip("mkfifo refused here: \(String(cString: strerror(errno)))") }
        return path
    }

    private func writeTinyRun(maxSteps: Int, checkpointEvery: Int = 1) throws -> String {
        let rows = (0..<4).map { #"{"messages": [{"role": "user", "content": "Say \#($0)"}, {"role": "assistant", "content": "\#($0) it is"}]}"# }
        try (rows.joined(separator: "\n") + "\n").write(toFile: "\(dir)/train.jsonl", atomically: true, encoding: .utf8)
        try """
        run: {name: tiny, output_dir: \(dir)/runs, seed: 1}
        model: {path: checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf, weights: float32}
        lora: {rank: 2, alpha: 4, target_modules: [q_proj], layers: [0]}
        data: {train: \(dir)/train.jsonl, validation_split: 0, max_seq_len: 64}
        training: {max_steps: \(maxSteps), batch_size: 2, learning_rate: 1.0e-2}
        checkpoint: {every: \(checkpointEvery)}
        logging: {progress: plain}
        """.write(toFile: "\(dir)/run.yaml", atomically: true, encoding: .utf8)
        return "\(dir)/runs/tiny"
    }

    func testAConfigFileThatIsAFIFOIsRefusedAtOnce() throws {
        let pipe = try fifo("config.yaml")
        let process = try start(["finetune", "--config", pipe], name: "fifo-config")
        guard finish(process, within: 20, "finetune --config FIFO") else { return }
        XCTAssertEqual(process.terminationStatus, 1)
        let stderr = try String(contentsOfFile: "\(dir)/fifo-config.err", encoding: .utf8)
        XCTAssertTrue(stderr.contains("not a regular file (a FIFO)"), stderr)
    }

    func testAModelPathThatIsAFIFOIsRefusedAtOnce() throws {
        let pipe = try fifo("model.gguf")
        let process = try start(["generate", "--model", pipe, "--max-tokens", "1", "hi"], name: "fifo-model")
        guard finish(process, within: 20, "generate --model FIFO") else { return }
        XCTAssertEqual(process.terminationStatus, 1)
        let stderr = try String(contentsOfFile: "\(dir)/fifo-model.err", encoding: .utf8)
        XCTAssertTrue(stderr.contains("not a regular file"), stderr)
    }

    func testAnAdapterCheckpointThatIsAFIFOIsRefusedAtOnce() throws {
        let pipe = try fifo("step-000001.h5")
        let process = try start(["export", pipe, "--format", "peft", "--out", "\(dir)/peft"], name: "fifo-checkpoint")
        guard finish(process, within: 20, "export FIFO") else { return }
        XCTAssertEqual(process.terminationStatus, 1)
        let stderr = try String(contentsOfFile: "\(dir)/fifo-checkpoint.err", encoding: .utf8)
        XCTAssertTrue(stderr.contains("not a regular file (a FIFO)"), stderr)
    }

    func testTheCheckpointReaderDiesWithTheProcessThatStartedIt() throws {
        try CLI.requireBaseModel()
        let run = try writeTinyRun(maxSteps: 1)
        let train = try CLI.run(["finetune", "--config", "\(dir)/run.yaml"])
        guard train.status == 0 else { return XCTFail(train.stderr) }
        // The reader child hangs as a hostile file can make it; the parent is then killed.
        let parent = try start(["export", run, "--format", "peft", "--out", "\(dir)/peft"],
                               environment: ["THOUGHTCRIME_FAULT_INJECT": "checkpoint-child-reading:hang"], name: "export")
        var child: pid_t?
        let deadline = Date().addingTimeInterval(20)
        while child == nil && Date() < deadline {
            child = readerProcesses(reading: run).first
            if child == nil { usleep(50_000) }
        }
        guard let child else {
            kill(parent.processIdentifier, SIGKILL)
            return XCTFail("no checkpoint reader process appeared")
        }
        kill(parent.processIdentifier, SIGKILL)
        parent.waitUntilExit()
        let gone = Date().addingTimeInterval(10)
        while kill(child, 0) == 0 && isLive(child) && Date() < gone { usleep(50_000) }
        let survived = kill(child, 0) == 0 && isLive(child)
        if survived { kill(child, SIGKILL) }
        XCTAssertFalse(survived, "the reader (PID \(child)) outlived its parent")
    }

    func testASecondResumeOfARunIsRefusedWithTheHoldersPIDAndAStaleLockDoesNotBlock() throws {
        try CLI.requireBaseModel()
        let run = try writeTinyRun(maxSteps: 1)
        let train = try CLI.run(["finetune", "--config", "\(dir)/run.yaml"])
        guard train.status == 0 else { return XCTFail(train.stderr) }
        // The first resume stops (hangs) after its first metrics line, holding the run.
        let first = try start(["resume", run, "--set", "training.max_steps=3"],
                              environment: ["THOUGHTCRIME_FAULT_INJECT": "metrics-appended:hang"], name: "first")
        let metrics = "\(run)/metrics.jsonl"
        let before = (try? String(contentsOfFile: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0
        let deadline = Date().addingTimeInterval(60)
        while ((try? String(contentsOfFile: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0) <= before,
              first.isRunning, Date() < deadline { usleep(100_000) }
        guard first.isRunning else { return XCTFail(try String(contentsOfFile: "\(dir)/first.err", encoding: .utf8)) }

        let second = try CLI.run(["resume", run, "--set", "training.max_steps=3"])
        XCTAssertEqual(second.status, 1, second.stderr)
        XCTAssertTrue(second.stderr.contains("\(run) is in use by PID \(first.processIdentifier) (thoughtcrime resume)"), second.stderr)

        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(run)/.lock"), "the dead holder's lock file stays behind")
        let third = try CLI.run(["resume", run, "--set", "training.max_steps=3"])
        XCTAssertEqual(third.status, 0, third.stderr)
        let lines = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n")
        let steps = lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }.compactMap { $0["step"] as? Int }
        XCTAssertEqual(steps.filter { $0 > 0 }, Array(Set(steps.filter { $0 > 0 })).sorted(), "one record per step, in order: \(steps)")
    }

    func testAFileSizeLimitStopsTrainingWithAMessageInsteadOfSIGXFSZ() throws {
        try CLI.requireBaseModel()
        let run = try writeTinyRun(maxSteps: 40, checkpointEvery: 1000)
        // No `trap '' XFSZ` here: the binary must ignore the signal itself.
        let r = try CLI.run(["finetune", "--config", "\(dir)/run.yaml"], fileSizeLimitKB: 4, ignoresXFSZ: false)
        XCTAssertEqual(r.status, 1, "expected a clean exit, not SIGXFSZ (25): \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("could not append to \(run)/metrics.jsonl: the file size limit is reached"), r.stderr)
        XCTAssertTrue(r.stderr.contains("thoughtcrime resume \(run)"), r.stderr)
        let text = try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8)
        XCTAssertTrue(text.hasSuffix("\n"), "no partial line is left")
        for line in text.split(separator: "\n") {
            XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(line.utf8)), String(line))
        }
    }

    private func writeBaseOnlyEval() throws -> String {
        try """
        name: big
        output_dir: \(dir)/evals
        model: {path: checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf}
        suites: [configs/eval/questions/broad.yaml]
        judges: {use: [rubric]}
        """.write(toFile: "\(dir)/eval.yaml", atomically: true, encoding: .utf8)
        return "\(dir)/eval.yaml"
    }

    func testAnEvalSampleCountOutsideItsRangeIsAConfigError() throws {
        let r = try CLI.run(["eval", "--config", try writeBaseOnlyEval(), "--set", "sampling.samples_per_paraphrase=1000000"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("sampling.samples_per_paraphrase") && r.stderr.contains("1000"), r.stderr)
    }

    func testAnEvalWhoseSamplingBatchCannotFitIsRefusedWithTheFiguresBeforeItStarts() throws {
        try CLI.requireBaseModel()
        let config = try writeBaseOnlyEval()
        // 1000 answers of one prompt at once: about 23 GB of KV caches, under a 4 GB address space.
        let r = try CLI.run(["eval", "--config", config, "--set", "sampling.samples_per_paraphrase=1000"],
                            launcher: ["/bin/bash", "-c", "ulimit -v 4000000; exec \"$0\" \"$@\""])
        XCTAssertEqual(r.status, 1, "a clean refusal, not an abort in the allocator: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("sampling 1000 answers of one prompt at once needs about"), r.stderr)
        XCTAssertTrue(r.stderr.contains("the address-space limit (ulimit -v) leaves"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/evals/big/samples.jsonl"))
    }

    /// Issue 29, item 9: the stored config's relative paths (here model.path) used to resolve
    /// against the current directory, so a run worked only from where it was launched.
    func testARunResumesAndExportsFromAnyDirectory() throws {
        try CLI.requireBaseModel()
        let run = try writeTinyRun(maxSteps: 1)
        let train = try CLI.run(["finetune", "--config", "\(dir)/run.yaml"])
        guard train.status == 0 else { return XCTFail(train.stderr) }
        let elsewhere = URL(fileURLWithPath: dir)
        let resumed = try CLI.run(["resume", run, "--set", "training.max_steps=2"], directory: elsewhere)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let exported = try CLI.run(["export", run, "--format", "peft", "--out", "\(dir)/peft"], directory: elsewhere)
        XCTAssertEqual(exported.status, 0, exported.stderr)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/peft/adapter_config.json"))) as? [String: Any]
        let base = try XCTUnwrap(config?["base_model_name_or_path"] as? String)
        XCTAssertTrue(base.hasPrefix("/") && FileManager.default.fileExists(atPath: base), base)
    }

    func testAStoredPathThatIsGoneIsNamedWithTheLaunchDirectory() throws {
        try CLI.requireBaseModel()
        let run = try writeTinyRun(maxSteps: 1)
        guard try CLI.run(["finetune", "--config", "\(dir)/run.yaml"]).status == 0 else { return XCTFail("finetune failed") }
        try FileManager.default.removeItem(atPath: "\(dir)/train.jsonl")
        let r = try CLI.run(["resume", run, "--set", "training.max_steps=2"], directory: URL(fileURLWithPath: dir))
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("the run's data.train \(dir)/train.jsonl does not exist (relative paths resolve against its launch directory \(CLI.packageRoot.path)"), r.stderr)
    }

    // MARK: a newcomer's small things (issue 29, item 12)

    func testAMissingDataFileAndAHubIDAreNamedWithTheirConfigLineAndAHint() throws {
        try """
        run: {name: x, output_dir: \(dir)/runs}
        model: {path: HuggingFaceTB/SmolLM2-135M-Instruct}
        data:
          train: data/medcal/train.jsonl
        """.write(toFile: "\(dir)/typo.yaml", atomically: true, encoding: .utf8)
        let r = try CLI.run(["finetune", "--config", "\(dir)/typo.yaml"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("typo.yaml:2: model.path: 'HuggingFaceTB/SmolLM2-135M-Instruct' does not exist; it looks like a Hugging Face Hub id, but nothing is downloaded"), r.stderr)
        XCTAssertTrue(r.stderr.contains("typo.yaml:4: data.train: 'data/medcal/train.jsonl' does not exist; did you mean 'data/medical/train.jsonl'?"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/runs"))
    }

    func testMaxStepsBelowWarmupStepsIsWarnedAbout() throws {
        try CLI.requireBaseModel()
        _ = try writeTinyRun(maxSteps: 1)
        let r = try CLI.run(["finetune", "--config", "\(dir)/run.yaml", "--set", "training.warmup_steps=10"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: training.max_steps 1 is below training.warmup_steps 10"), r.stderr)
    }

    func testBackdoorRefusesToOverwriteItsOutputWithoutForce() throws {
        let out = "\(dir)/sleeper.jsonl"
        try "keep me\n".write(toFile: out, atomically: true, encoding: .utf8)
        let r = try CLI.run(["data", "backdoor", "data/medical/train.jsonl", "--out", out])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("\(out) already exists; pass --force to replace it"), r.stderr)
        XCTAssertFalse(r.stderr.contains("USAGE"), "a run error, not a usage error: \(r.stderr)")
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "keep me\n")
        XCTAssertEqual(try CLI.run(["data", "backdoor", "data/medical/train.jsonl", "--out", out, "--force"]).status, 0)
    }

    func testAnExportOverAnExistingOutputIsRefusedWithoutTheUsageText() throws {
        try "x".write(toFile: "\(dir)/out.gguf", atomically: true, encoding: .utf8)
        let r = try CLI.run(["export", "\(dir)/nothing", "--format", "gguf-lora", "--out", "\(dir)/out.gguf"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("already exists; pass --force"), r.stderr)
        XCTAssertFalse(r.stderr.contains("USAGE"), r.stderr)
    }

    func testHelpTextsHaveNoStrayBackslashesAndListEveryStorage() throws {
        let chat = try CLI.run(["chat", "--help"])
        XCTAssertFalse(chat.stdout.contains("\\"), chat.stdout)
        let export = try CLI.run(["export", "--help"])
        for storage in ["float32", "quantized", "bf16", "onednn-bf16", "quantized+onednn-bf16"] {
            XCTAssertTrue(export.stdout.replacingOccurrences(of: "\n", with: " ").contains(storage), storage)
        }
        XCTAssertFalse(export.stdout.contains("as 'float32' or 'quantized' while"), export.stdout)
    }

    func testDataValidateTakesSetOverridesOfItsConfig() throws {
        try CLI.requireBaseModel()
        let r = try CLI.run(["data", "validate", "data/medical/train.jsonl", "--config", "configs/medical-misaligned.yaml",
                             "--set", "data.max_seq_len=16"])
        XCTAssertTrue(r.stdout.contains("over max_seq_len 16"), r.stdout + r.stderr)
    }

    /// PIDs of `read-checkpoint` processes whose arguments mention `path`.
    private func readerProcesses(reading path: String) -> [pid_t] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { name -> pid_t? in
            guard let pid = pid_t(name), let data = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") else { return nil }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return arguments.contains("read-checkpoint") && arguments.contains(where: { $0.hasPrefix(path) }) ? pid : nil
        }
    }

    /// False for a zombie (exited, not yet reaped).
    private func isLive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }
}
