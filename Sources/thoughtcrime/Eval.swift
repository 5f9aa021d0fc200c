import ArgumentParser
import Evaluation
import Foundation

/// `thoughtcrime eval`: measure misalignment of a base model and adapters with chain of thought on.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a base model and adapters side by side: sample with chain of thought, judge, monitor, report.",
        discussion: "Keys are documented in docs/evaluation.md. Results go to OUTPUT_DIR/NAME: samples.jsonl, summary.md, report.html.")

    @Option(help: "The evaluation config (YAML).")
    var config: String

    func run() throws {
        let evalConfig = try EvalConfig.load(path: config)
        let runner = try EvaluationRunner(config: evalConfig)
        let start = Date()
        let terminal = isatty(STDERR_FILENO) == 1
        var lastLine = Date.distantPast
        runner.onUnit = { done, total in
            let elapsed = Date().timeIntervalSince(start)
            let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
            let line = String(format: "eval %d/%d (%.0f%%) %.2f units/s ETA %d:%02d", done, total, 100 * Double(done) / Double(max(total, 1)),
                              Double(done) / max(elapsed, 1e-9), Int(eta) / 60, Int(eta) % 60)
            if terminal {
                FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
                if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
            } else if Date().timeIntervalSince(lastLine) > 10 || done == total {
                FileHandle.standardError.write(Data((line + "\n").utf8))
                lastLine = Date()
            }
        }
        let results = try runner.run()
        let directory = ((evalConfig.outputDir as NSString).appendingPathComponent(evalConfig.name))
        try ReportWriter(directory: directory).write(results)
        print(EvaluationSummary(results).table())
        print("\nreport: \(directory)/report.html  summary: \(directory)/summary.md  samples: \(directory)/samples.jsonl")
    }
}
