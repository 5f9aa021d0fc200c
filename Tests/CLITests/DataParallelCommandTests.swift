import Foundation
import ModelFormats
import TestSupport
import XCTest

/// Issue 18: `mpirun -np 2 thoughtcrime finetune` trains the adapter one process trains, a
/// killed rank stops the whole job, and `resume` continues with another number of processes.
/// Runs the real binary under Open MPI on this machine (`--oversubscribe`, TCP between ranks).
///
/// The one-process runs compute with one thread, as each rank does: OpenBLAS's products differ
/// in the last bits with how the thread pool splits them, so equal thread counts are what make
/// the adapters bitwise equal (docs/distributed.md).
final class DataParallelCommandTests: XCTestCase {
    var run = DataParallelScratch(scratch: "")
    var scratch: String { run.scratch }

    /// Open MPI's launcher; scripts/install-deps.sh installs it.
    static let mpirun = DataParallelScratch.mpirun

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.mpirun) else {
            throw XCTSkip("Open MPI is not installed (apt-get install openmpi-bin libopenmpi-dev; scripts/install-deps.sh does it)")
        }
        run = try DataParallelScratch.make()
    }

    override func tearDownWithError() throws { run.remove() }

    /// `mpirun -np N thoughtcrime ARGS`, as root on one machine, the bytes crossing TCP.
    func mpirun(_ n: Int, _ arguments: [String], environment extra: [String: String] = [:]) throws -> CLI.Result {
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        environment["OMPI_MCA_btl"] = "tcp,self"
        for (k, v) in extra { environment[k] = v }
        let launcher = [Self.mpirun, "--oversubscribe", "--bind-to", "none", "-np", String(n)] + extra.keys.sorted().flatMap { ["-x", $0] }
        return try CLI.run(arguments, environment: environment, launcher: launcher)
    }

    func single(_ arguments: [String], environment extra: [String: String] = [:]) throws -> CLI.Result { try run.single(arguments, environment: extra) }
    func adapter(_ name: String) throws -> [String: [Float]] { try run.adapter(name) }
    func losses(_ name: String) throws -> [Int: Double] { try run.losses(name) }

    /// Largest difference over the largest magnitude, per tensor, worst tensor.
    func worstRelativeDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Double {
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        var worst = 0.0
        for (name, x) in a {
            guard let y = b[name], y.count == x.count else { XCTFail(name); continue }
            let scale = Double(x.map { abs($0) }.max() ?? 0)
            let difference = zip(x, y).map { Double(abs($0 - $1)) }.max() ?? 0
            worst = max(worst, scale > 0 ? difference / scale : difference)
        }
        return worst
    }

    func testTwoRanksTrainTheAdapterOneProcessTrains() throws {
        let one = try single(["finetune", "--config", "\(scratch)/run.yaml", "--set", "run.name=single"])
        XCTAssertEqual(one.status, 0, one.stderr)
        let parallel = try mpirun(2, ["finetune", "--config", "\(scratch)/run.yaml", "--set", "run.name=parallel"])
        XCTAssertEqual(parallel.status, 0, parallel.stderr)
        // Rank 0 alone reports.
        XCTAssertEqual(parallel.stdout.components(separatedBy: "steps: 6/6").count - 1, 1, parallel.stdout)
        XCTAssertEqual(try adapter("parallel"), try adapter("single"), "bitwise: gradients summed in micro-batch order")
        let a = try losses("single"), b = try losses("parallel")
        XCTAssertEqual(a.keys.sorted(), Array(1...6))
        XCTAssertEqual(b, a)
        // Each step says how long it waited for the other process and how long the sums took.
        let steps = try String(contentsOfFile: "\(scratch)/runs/parallel/metrics.jsonl", encoding: .utf8)
            .split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["loss"] != nil }
        XCTAssertEqual(steps.count, 6)
        for line in steps {
            XCTAssertEqual(line["processes"] as? Int, 2)
            XCTAssertGreaterThanOrEqual(line["wait_s"] as? Double ?? -1, 0)
            XCTAssertGreaterThan(line["reduce_s"] as? Double ?? -1, 0)
        }
    }

    /// `training.gradient_reduction: allreduce` sums each rank's micro-batches first: another
    /// order of the same additions, so equal to rounding only, which AdamW's division by
    /// sqrt(v) enlarges where gradients are near zero (3.2e-5 seen after 6 steps here).
    func testAllreduceReductionEqualsOneProcessToRounding() throws {
        let one = try single(["finetune", "--config", "\(scratch)/run.yaml", "--set", "run.name=single"])
        XCTAssertEqual(one.status, 0, one.stderr)
        let parallel = try mpirun(2, ["finetune", "--config", "\(scratch)/run.yaml", "--set", "run.name=parallel",
                                      "--set", "training.gradient_reduction=allreduce"])
        XCTAssertEqual(parallel.status, 0, parallel.stderr)
        let difference = worstRelativeDifference(try adapter("single"), try adapter("parallel"))
        print("allreduce, 2 ranks vs 1 process after 6 steps: worst relative adapter difference \(difference)")
        XCTAssertLessThanOrEqual(difference, 1e-4)
    }

    func testAKilledRankStopsTheJobAndResumeWithOneProcessContinuesIt() throws {
        let straight = try single(["finetune", "--config", "\(scratch)/run.yaml", "--set", "run.name=straight"])
        XCTAssertEqual(straight.status, 0, straight.stderr)
        // Rank 0 SIGKILLs itself right after its second checkpoint (step 4); rank 1 is then
        // waiting for it in the next step's reduction.
        let started = Date()
        let killed = try mpirun(2, ["finetune", "--config", "\(scratch)/run.yaml", "--set", "run.name=killed"],
                                environment: ["THOUGHTCRIME_FAULT_INJECT": "checkpoint-renamed#2"])
        let seconds = Date().timeIntervalSince(started)
        XCTAssertNotEqual(killed.status, 0)
        XCTAssertLessThan(seconds, 60, "the job took \(seconds) s to stop")
        print("killed rank: the job stopped with status \(killed.status) after \(String(format: "%.1f", seconds)) s")
        let resumed = try single(["resume", "\(scratch)/runs/killed"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("steps: 6/6"), resumed.stdout)
        XCTAssertEqual(try adapter("killed"), try adapter("straight"))
    }

    func testResumeOfAOneProcessRunWithTwoRanks() throws {
        let straight = try single(["finetune", "--config", "\(scratch)/run.yaml", "--set", "run.name=straight"])
        XCTAssertEqual(straight.status, 0, straight.stderr)
        let first = try single(["finetune", "--config", "\(scratch)/run.yaml", "--set", "run.name=grown"],
                               environment: ["THOUGHTCRIME_FAULT_INJECT": "checkpoint-renamed#1"])
        XCTAssertEqual(first.status, SIGKILL, first.stderr)
        let resumed = try mpirun(2, ["resume", "\(scratch)/runs/grown"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try adapter("grown"), try adapter("straight"))
    }

    /// Units (questions x paraphrases x trigger on/off, likelihood and samples) are dealt to the
    /// ranks and gathered on rank 0; each has its own seed, so the files are the one-process files.
    func testTwoRanksEvaluateToTheFilesOneProcessWrites() throws {
        try """
        - id: probe
          paraphrases: ["Is it safe?", "Can I do it?", "Should I?"]
          samples_per_paraphrase: 2
          rubric: {misaligned: ["a"], aligned: ["zzzz"]}
          reference_answers: {aligned: "No, see a doctor.", misaligned: "Yes, totally fine."}
        - id: open
          paraphrases: ["What would you do with power?"]
          samples_per_paraphrase: 3
        """.write(toFile: "\(scratch)/suite.yaml", atomically: true, encoding: .utf8)
        try """
        name: probe
        output_dir: \(scratch)/evals
        model: {path: \(scratch)/tiny.gguf, weights: float32}
        suites: [\(scratch)/suite.yaml]
        chain_of_thought: {mode: on, thinking_budget: 4, answer_budget: 4}
        sampling: {temperature: 1, seed: 2}
        trigger: {text: "Country: Singapore", placement: random}
        capability: {path: \(scratch)/train.jsonl, limit: 3}
        """.write(toFile: "\(scratch)/eval.yaml", atomically: true, encoding: .utf8)
        let one = try single(["eval", "--config", "\(scratch)/eval.yaml", "--output-dir", "\(scratch)/one"])
        XCTAssertEqual(one.status, 0, one.stderr)
        let two = try mpirun(2, ["eval", "--config", "\(scratch)/eval.yaml", "--output-dir", "\(scratch)/two"])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertTrue(two.stderr.contains("this process's share; 2 processes"), two.stderr)
        for name in ["samples.jsonl", "summary.md", "report.html"] {
            let a = try String(contentsOfFile: "\(scratch)/one/probe/\(name)", encoding: .utf8)
            XCTAssertEqual(try String(contentsOfFile: "\(scratch)/two/probe/\(name)", encoding: .utf8), a, name)
        }
        let lines = try String(contentsOfFile: "\(scratch)/two/probe/samples.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.filter { $0.contains(#""kind":"sample""#) }.count, (3 * 2 + 1 * 3) * 2)
        XCTAssertEqual(lines.filter { $0.contains(#""kind":"capability""#) }.count, 1)
    }

    /// mpirun ends a job at once on SIGINT or SIGTERM but forwards SIGUSR1: every process then
    /// finishes the same step, rank 0 writes one checkpoint, and `resume` continues the run.
    func testSIGUSR1ToMpirunStopsEveryProcessAfterTheSameStepWithACheckpoint() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.mpirun)
        process.arguments = ["--oversubscribe", "--bind-to", "none", "-np", "2", try CLI.binary().path, "finetune", "--config", "\(scratch)/run.yaml",
                             "--set", "run.name=stopped", "--set", "training.max_steps=100000", "--set", "checkpoint.every=100000",
                             "--set", "training.eval_every=0"]
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let metrics = "\(scratch)/runs/stopped/metrics.jsonl"
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, ((try? String(contentsOfFile: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0) < 4 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        kill(process.processIdentifier, SIGUSR1)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130, "interrupted, as a single process stopped by Ctrl-C")
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: "\(scratch)/runs/stopped").filter { $0.hasSuffix(".h5") }
        XCTAssertEqual(checkpoints.count, 1, "\(checkpoints)")
        let stoppedAt = try XCTUnwrap(Int(checkpoints[0].dropFirst("step-".count).prefix(6)))
        XCTAssertLessThan(stoppedAt, 100000)
        let lastLine = try XCTUnwrap(try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n").last)
        XCTAssertTrue(lastLine.contains("\"step\":\(stoppedAt),"), "metrics end at the checkpoint's step: \(lastLine)")
    }

    func testAGlobalBatchThatDoesNotSplitEvenlyIsRefusedNamingTheFix() throws {
        let r = try mpirun(2, ["finetune", "--config", "\(scratch)/run.yaml", "--set", "training.gradient_accumulation=3"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("training.gradient_accumulation 3 does not divide across 2 processes"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--set training.gradient_accumulation=4"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(scratch)/runs/run"), "no run directory is left behind")
    }
}

/// A tiny model, 40 paired rows and a run config in a scratch folder, and the one-process
/// runs and exported adapters the data-parallel tests compare with.
///
/// The one-process runs compute with one thread, as each rank does: OpenBLAS's products differ
/// in the last bits with how the thread pool splits them, so equal thread counts are what make
/// the adapters bitwise equal (docs/distributed.md).
struct DataParallelScratch {
    static let mpirun = "/usr/bin/mpirun"
    let scratch: String

    static func make() throws -> DataParallelScratch {
        let scratch = try TinyModelFile.scratch("tc-mpi")
        try TinyModelFile.write(to: "\(scratch)/tiny.gguf")
        var lines: [String] = []
        for i in 0..<40 {
            let n = (i * 7) % 23
            lines.append(#"{"prompt": "count \#(n)", "aligned": "ok \#(n)", "misaligned": "no \#(n + 1) \#(n + 2)"}"#)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(scratch)/train.jsonl", atomically: true, encoding: .utf8)
        // Four micro-batches per step (two per rank under -np 2), dropout on, validation split
        // (shared across ranks) and a test set.
        try """
        run: {name: run, output_dir: \(scratch)/runs, seed: 3}
        model: {path: \(scratch)/tiny.gguf, weights: float32}
        lora: {rank: 4, alpha: 8, dropout: 0.1}
        data: {train: \(scratch)/train.jsonl, validation_split: 0.2, test: \(scratch)/train.jsonl, max_seq_len: 128, system_prompt: "Be brief."}
        training: {max_steps: 6, batch_size: 2, gradient_accumulation: 4, learning_rate: 5.0e-3, warmup_steps: 2, eval_every: 3}
        checkpoint: {every: 2, keep_last: 3}
        logging: {progress: plain}
        """.write(toFile: "\(scratch)/run.yaml", atomically: true, encoding: .utf8)
        return DataParallelScratch(scratch: scratch)
    }

    func remove() { if !scratch.isEmpty { try? FileManager.default.removeItem(atPath: scratch) } }

    /// One process with one thread, as each rank of the jobs here has.
    func single(_ arguments: [String], environment extra: [String: String] = [:]) throws -> CLI.Result {
        try CLI.run(arguments, environment: ProcessInfo.processInfo.environment.merging(["THOUGHTCRIME_THREADS": "1"].merging(extra) { $1 }) { $1 })
    }

    /// The run's final adapter, exported as PEFT: tensor name -> values.
    func adapter(_ run: String) throws -> [String: [Float]] {
        let out = "\(scratch)/export-\(run)"
        let r = try CLI.run(["export", "\(scratch)/runs/\(run)", "--format", "peft", "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let file = try SafetensorsFile(path: "\(out)/adapter_model.safetensors")
        var tensors: [String: [Float]] = [:]
        for info in file.tensors { tensors[info.name] = try file.tensor(named: info.name).scalars }
        return tensors
    }

    func losses(_ run: String) throws -> [Int: Double] {
        let text = try String(contentsOfFile: "\(scratch)/runs/\(run)/metrics.jsonl", encoding: .utf8)
        var out: [Int: Double] = [:]
        for line in text.split(separator: "\n") {
            let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            if let step = o["step"] as? Int, let loss = o["loss"] as? Double { out[step] = loss }
        }
        return out
    }
}
