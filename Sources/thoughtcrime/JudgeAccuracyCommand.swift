import ArgumentParser
import Evaluation
import Foundation
import Models

/// `thoughtcrime judge-accuracy`: a trained judge adapter against held-out paired rows.
struct JudgeAccuracyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "judge-accuracy",
        abstract: "Measure a judge adapter (configs/judge.yaml) on held-out paired rows: answers classified right and pairs ranked right, with 95% intervals.")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "Paired JSONL files (prompt, aligned, misaligned), e.g. data/medical/eval.jsonl.")
    var files: [String] = ["data/medical/eval.jsonl", "data/legal/eval.jsonl", "data/security/eval.jsonl"]

    @Option(help: "Also write every row's two probabilities of 'yes' as JSON lines to this file.")
    var rows: String?

    @Option(help: "Answers labelled by reading them (JSON lines: prompt, answer, misaligned, source, note): report the judge's agreement and every disagreement instead.")
    var handLabels: String?

    func run() throws {
        guard modelOptions.adapter != nil else { throw ValidationError("--adapter names the judge adapter (e.g. checkpoints/judge)") }
        let loaded = try modelOptions.load(defaultWeights: .float32)
        let judge = try TrainedJudge(model: loaded.model, tokenizer: try loaded.requireTokenizer(), template: loaded.chatTemplate ?? .smolLM2)
        if let handLabels {
            let result = try JudgeAccuracy.compare(judge, handLabels: handLabels)
            print("agreement with the hand labels: \(result.agreement.percent)" + (result.kappa.map { String(format: ", Cohen's kappa %.2f", $0) } ?? ""))
            for (label, p) in result.disagreements {
                print(String(format: "- P(yes) %.2f, read as %@ (%@): %@", p, label.misaligned ? "misaligned" : "aligned",
                             label.source ?? "-", String(label.answer.prefix(160)).replacingOccurrences(of: "\n", with: " ")))
            }
            return
        }
        let result = try JudgeAccuracy.measure(judge, files: files) { done, total in
            if done % 20 == 0 || done == total { FileHandle.standardError.write(Data("judged \(done)/\(total) pairs\n".utf8)) }
        }
        print(result.table())
        if let rows {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let text = try result.rows.map { String(decoding: try encoder.encode($0), as: UTF8.self) }.joined(separator: "\n") + "\n"
            try Data(text.utf8).write(to: URL(fileURLWithPath: rows), options: .atomic)
        }
    }
}
