import ArgumentParser
import Evaluation
import Foundation
import Training

/// `thoughtcrime eval`: measure misalignment of a base model and adapters with chain of thought on.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a base model and adapters side by side: sample with chain of thought, judge, monitor, report.",
        discussion: "Keys are documented in docs/evaluation.md. Results go to OUTPUT_DIR/NAME: samples.jsonl, summary.md, report.html.")

    @Option(help: "The evaluation config (YAML).")
    var config: String

    @Option(name: .customLong("adapter"), help: "Set or add an adapter to compare, as NAME=PATH (repeatable).")
    var adapters: [String] = []

    @Option(name: .customLong("output-dir"), help: "Override the config's output_dir.")
    var outputDir: String?

    @Option(name: .customLong("set"), help: "Override a config key, as KEY.PATH=VALUE with the value in YAML (repeatable), e.g. --set sampling.temperature=0.7 (as finetune's --set).")
    var overrides: [String] = []

    @Flag(help: "Judge the samples of an earlier run that were left unjudged (e.g. after an unreachable HTTP judge) instead of sampling again.")
    var rejudge = false

    @Flag(help: "Judge and monitor every sample of an earlier run again with the config's judges and monitor (e.g. --set monitor.backend=local), without sampling; implies --rejudge. Copy the run directory first to keep the earlier labels.")
    var relabel = false

    @Flag(help: "Continue an interrupted evaluation: reuse the records its samples.jsonl holds and compute the rest (same seeds, so the results equal an uninterrupted run).")
    var resume = false

    func run() throws {
        var evalConfig = try EvalConfig.load(path: config, overrides: overrides)
        for item in adapters {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw ValidationError("--adapter expects NAME=PATH, got '\(item)'")
            }
            let name = String(item[..<eq]), path = String(item[item.index(after: eq)...])
            if let i = evalConfig.models.firstIndex(where: { $0.name == name }) {
                evalConfig.models[i].adapter = path
            } else {
                evalConfig.models.append(EvalConfig.ModelUnderTest(name: name, adapter: path))
            }
        }
        if let outputDir { evalConfig.outputDir = outputDir }
        let runner = try EvaluationRunner(config: evalConfig)
        let cluster = runner.cluster
        if !(rejudge || relabel) {
            // Before the run directory is touched: refuse a sampling batch that cannot fit.
            try runner.estimate.requireFits()
            if cluster.isRoot { FileHandle.standardError.write(Data("eval: \(runner.estimate)\n".utf8)) }
        }
        // Under mpirun every process samples its share of the units; rank 0 alone talks and writes.
        if !cluster.isRoot { runner.progress = { _ in } }
        let share = cluster.isDistributed ? " (this process's share; \(cluster.size) processes)" : ""
        let start = Date()
        let terminal = isatty(STDERR_FILENO) == 1
        var lastLine = Date.distantPast
        if cluster.isRoot {
            runner.onUnit = { done, total in
                let elapsed = Date().timeIntervalSince(start)
                let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
                let line = String(format: "eval %d/%d (%.0f%%) %.2f units/s ETA %d:%02d", done, total, 100 * Double(done) / Double(max(total, 1)),
                                  Double(done) / max(elapsed, 1e-9), Int(eta) / 60, Int(eta) % 60) + share
                if terminal {
                    FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
                    if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
                } else if Date().timeIntervalSince(lastLine) > 10 || done == total {
                    FileHandle.standardError.write(Data((line + "\n").utf8))
                    lastLine = Date()
                }
            }
        }
        let directory = ((evalConfig.outputDir as NSString).appendingPathComponent(evalConfig.name))
        let results: EvaluationResults
        let samplesPath = (directory as NSString).appendingPathComponent("samples.jsonl")
        let reportPath = (directory as NSString).appendingPathComponent("report.html")
        // One process writes an evaluation's directory at a time: a second eval (or --resume)
        // of the same one is refused with the holder's PID (docs/reliability.md).
        var lock: RunDirectoryLock?
        if cluster.isRoot {
            if !(rejudge || relabel) {
                do {
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                } catch {
                    throw ValidationError("\(directory): cannot create the evaluation directory: \(error.localizedDescription)")
                }
            }
            if FileManager.default.fileExists(atPath: directory) {
                lock = try RunDirectoryLock(directory: directory, holder: rejudge || relabel ? "eval --rejudge" : resume ? "eval --resume" : "eval")
            }
        }
        defer { withExtendedLifetime(lock) {} }
        if rejudge || relabel {
            // Judging kept samples is one process's work: the others have nothing to do.
            guard cluster.isRoot else { cluster.finish(); return }
            let earlier = try EvaluationResults.read(samplesFile: samplesPath, name: evalConfig.name, trigger: evalConfig.trigger)
            results = try runner.rejudge(earlier, relabel: relabel)
        } else {
            let fm = FileManager.default
            if !resume, fm.fileExists(atPath: samplesPath), !fm.fileExists(atPath: reportPath) {
                throw EvalCommandError.interruptedRunExists(samples: samplesPath, config: config)
            }
            // Every process has looked at the directory before rank 0 changes it.
            cluster.barrier()
            var log: SampleLog?
            if cluster.isRoot {
                if !resume {
                    // A new run: reports of an earlier one must not sit beside its new samples.
                    for name in ["summary.md", "report.html"] { try? fm.removeItem(atPath: (directory as NSString).appendingPathComponent(name)) }
                }
                // Rank 0 writes its own units as they finish (and reuses them on --resume); the
                // other processes' records reach samples.jsonl when they are gathered at the end.
                let opened = try SampleLog(directory: directory, configDigest: evalConfig.digest, resume: resume)
                if resume { FileHandle.standardError.write(Data("resuming: \(opened.reusedRecordsAvailable) records of \(samplesPath) will be reused\n".utf8)) }
                log = opened
            }
            results = try runner.run(log: log)
        }
        cluster.finish()
        guard cluster.isRoot else { return }
        try ReportWriter(directory: directory).write(results)
        print(EvaluationSummary(results).table())
        print("\nreport: \(directory)/report.html  summary: \(directory)/summary.md  samples: \(directory)/samples.jsonl")
        if let failure = runner.judgeFailure {
            throw ValidationError("\(failure)\nThe samples are saved in \(directory)/samples.jsonl; finish judging with: thoughtcrime eval --config \(config) --rejudge")
        }
    }
}

enum EvalCommandError: Error, CustomStringConvertible {
    case interruptedRunExists(samples: String, config: String)

    var description: String {
        switch self {
        case let .interruptedRunExists(samples, config):
            return "\(samples) holds an interrupted evaluation (no report.html beside it). Continue it with: thoughtcrime eval --config \(config) --resume (or delete it to start over)"
        }
    }
}
