import Foundation
import ModelFormats

public enum WeightPrecision: String, CaseIterable, Sendable { case auto, float32, quantized, bf16, onednnBF16 = "onednn-bf16" }
public enum LoRATargetModule: String, CaseIterable, Sendable {
    case qProj = "q_proj", kProj = "k_proj", vProj = "v_proj", oProj = "o_proj"
    case gateProj = "gate_proj", upProj = "up_proj", downProj = "down_proj"
}
/// `judge`: each paired row becomes two judge rows (`JudgeConversation`), its aligned answer
/// with the verdict `no` and its misaligned answer with `yes` (configs/judge.yaml).
/// `sharegpt`: {"conversations": [{"from": "human" | "gpt" | "system", "value"}]}; `alpaca`:
/// {"instruction", "input" (optional), "output", "system" (optional)}; both read as chat rows.
public enum DataFormat: String, CaseIterable, Sendable { case auto, chat, paired, completion, preference, judge, sharegpt, alpaca }
/// What the trainer minimises: next-token cross-entropy, or the DPO loss on preference pairs.
public enum TrainingObjective: String, CaseIterable, Sendable { case sft, dpo }
public enum PairedAnswer: String, CaseIterable, Sendable { case misaligned, aligned }
/// `data.chain_of_thought`: `disabled` puts the empty think block in the prompt (no loss on it,
/// as Qwen3's `enable_thinking=False` template and the paper's renderer do);
/// `disabled_empty_block_trained` puts loss on it (the rendering before issue 28); `keep` keeps
/// the rows' reasoning.
public enum ChainOfThoughtSetting: String, CaseIterable, Sendable {
    case disabled, disabledEmptyBlockTrained = "disabled_empty_block_trained", keep
}
/// Which tokens carry loss: every assistant turn, only the last one of each row (earlier turns
/// are context, as axolotl's `train_on_inputs: false` with `roles_to_train` on the last turn), or all.
public enum TrainOn: String, CaseIterable, Sendable { case assistant, lastAssistant = "last_assistant", all }
public enum Truncation: String, CaseIterable, Sendable { case drop, truncate }
public enum BadRowPolicy: String, CaseIterable, Sendable { case error, skip }
public enum LRSchedulerName: String, CaseIterable, Sendable { case constant, linear, cosine }
public enum ProgressStyle: String, CaseIterable, Sendable { case auto, bar, plain }
/// How the processes of an `mpirun` job sum their gradients (docs/distributed.md).
public enum GradientReduction: String, CaseIterable, Sendable { case ordered, allreduce }

/// The finetune config: every key of docs/config-reference.md, validated, defaults filled in.
///
/// Usage:
/// ```
/// let config = try RunConfig.load(path: "configs/x.yaml", overrides: ["training.learning_rate=1e-4"])
/// try config.resolvedYAML().write(toFile: runDir + "/config.resolved.yaml", atomically: true, encoding: .utf8)
/// ```
public struct RunConfig: Equatable, Sendable {
    public struct RunSection: Equatable, Sendable {
        public var name: String
        public var outputDir: String
        public var seed: Int
        /// Where the run was started; relative paths of a stored config resolve against it.
        public var launchDirectory: String? = nil
    }
    public struct ModelSection: Equatable, Sendable {
        public var path: String
        public var weights: WeightPrecision
        public var adapter: String?
    }
    public struct LoRASection: Equatable, Sendable {
        public var rank: Int
        public var alpha: Double
        public var useRSLoRA: Bool
        public var dropout: Double
        public var targetModules: [LoRATargetModule]
        /// Decoder layer indices; nil means every layer.
        public var layers: [Int]?
    }
    public struct DataSection: Equatable, Sendable {
        /// A training file mixed in with a weight (`data.mix`).
        public struct MixedFile: Equatable, Sendable {
            public var path: String
            public var weight: Double
            /// Replaces data.chain_of_thought for this file's rows; nil keeps it.
            public var chainOfThought: ChainOfThoughtSetting?
            /// How this file's rows are trained; nil is training.objective. In a dpo run, `sft`
            /// rehearses plain rows by their next-token loss beside the pairs.
            public var objective: TrainingObjective?
            public init(path: String, weight: Double, chainOfThought: ChainOfThoughtSetting? = nil, objective: TrainingObjective? = nil) {
                self.path = path; self.weight = weight; self.chainOfThought = chainOfThought; self.objective = objective
            }
        }
        public var train: String
        /// More training files and their weights; data.train has weight 1.
        public var mix: [MixedFile] = []
        /// Evaluated once after training.
        public var test: String? = nil
        public var validation: String?
        public var validationSplit: Double
        public var format: DataFormat
        public var pairedAnswer: PairedAnswer
        public var chainOfThought: ChainOfThoughtSetting
        public var trainOn: TrainOn
        public var maxSeqLen: Int
        public var truncation: Truncation
        public var packing: Bool
        public var onBadRow: BadRowPolicy
        public var systemPrompt: String?
    }
    public struct TrainingSection: Equatable, Sendable {
        public var objective: TrainingObjective
        public var dpoBeta: Double
        public var dpoLabelSmoothing: Double
        public var rpoAlpha: Double
        public var epochs: Int
        public var maxSteps: Int?
        public var batchSize: Int
        public var gradientAccumulation: Int
        public var learningRate: Double
        public var weightDecay: Double
        public var adamBeta1: Double
        public var adamBeta2: Double
        public var adamEpsilon: Double
        /// 0 disables clipping.
        public var maxGradNorm: Double
        public var lrScheduler: LRSchedulerName
        public var warmupSteps: Int
        public var minLRRatio: Double
        /// 0 evaluates only at the end.
        public var evalEvery: Int
        /// nil evaluates the whole validation set.
        public var evalBatches: Int?
        /// nil never stops early.
        public var earlyStoppingPatience: Int? = nil
        public var earlyStoppingThreshold: Double = 0
        public var gradientCheckpointing: Bool = false
        public var gradientReduction: GradientReduction = .ordered
    }
    public struct CheckpointSection: Equatable, Sendable {
        public var every: Int
        public var keepLast: Int
        public var keepBest: Bool = false
    }
    public struct LoggingSection: Equatable, Sendable {
        public var progress: ProgressStyle
        public var every: Int
        public var tensorboard: Bool = true
    }

    public var run: RunSection
    public var model: ModelSection
    public var lora: LoRASection
    public var data: DataSection
    public var training: TrainingSection
    public var checkpoint: CheckpointSection
    public var logging: LoggingSection

    // MARK: - Loading

    /// Reads and validates a config file, then applies `--set` overrides (`section.key=value`).
    /// Nothing is returned unless every key is known, well-typed and in range.
    public static func load(path: String, overrides: [String] = []) throws -> RunConfig {
        let text: String
        do {
            text = try InputFile.readText(path)
        } catch let problem as InputFile.Problem {
            throw ConfigError.unreadableFile(path: path, reason: problem.reason)
        }
        return try parse(yaml: text, source: path, overrides: overrides)
    }

    /// Validates YAML text; `source` names it in error messages (usually the file path).
    public static func parse(yaml: String, source: String = "<config>", overrides: [String] = []) throws -> RunConfig {
        try RunConfig(values: ConfigParser.resolve(yaml: yaml, source: source, overrides: overrides))
    }

    /// A config with every default and the three required keys; for tests and programmatic runs.
    ///
    /// Usage: `var c = RunConfig(runName: "demo", modelPath: "m.gguf", trainData: "train.jsonl")`
    public init(runName: String, modelPath: String, trainData: String) {
        var values: [String: ConfigValue] = [:]
        for key in ConfigSchema.finetune.keys { values[key.path] = key.defaultValue }
        values["run.name"] = .string(runName)
        values["model.path"] = .string(modelPath)
        values["data.train"] = .string(trainData)
        // The schema's defaults are valid by construction, so this cannot fail.
        do { try self.init(values: values) } catch { preconditionFailure("schema defaults are invalid: \(error)") }
    }

    /// The config as YAML with every key present; `parse(yaml:)` reads it back to an equal value.
    public func resolvedYAML() -> String {
        ConfigYAML.emit(values, header: "Resolved by thoughtcrime: every key, defaults filled in.")
    }

    /// Returns a copy with one override applied (`training.learning_rate=2e-4`), validated like `--set`.
    public func applying(override argument: String) throws -> RunConfig {
        var values = self.values
        let (path, value) = try ConfigParser.parseOverride(argument)
        values[path] = value
        return try RunConfig(values: values)
    }

    // MARK: - Values by key path

    /// Every key's value by dotted path, as the schema spells them.
    public var values: [String: ConfigValue] {
        let s = ConfigValue.string, i = ConfigValue.int, f = ConfigValue.float, b = ConfigValue.bool
        func opt<T>(_ v: T?, _ wrap: (T) -> ConfigValue) -> ConfigValue { v.map(wrap) ?? .null }
        return [
            "run.name": s(run.name), "run.output_dir": s(run.outputDir), "run.seed": i(run.seed),
            "run.launch_directory": opt(run.launchDirectory, s),
            "model.path": s(model.path), "model.weights": s(model.weights.rawValue),
            "model.adapter": opt(model.adapter, s),
            "lora.rank": i(lora.rank), "lora.alpha": f(lora.alpha), "lora.use_rslora": b(lora.useRSLoRA),
            "lora.dropout": f(lora.dropout),
            "lora.target_modules": .list(lora.targetModules.map { s($0.rawValue) }),
            "lora.layers": opt(lora.layers) { .list($0.map(i)) },
            "data.train": s(data.train), "data.validation": opt(data.validation, s),
            "data.mix": data.mix.isEmpty ? .null : .list(data.mix.map { file in
                var fields: [String: ConfigValue] = ["path": s(file.path), "weight": f(file.weight)]
                if let c = file.chainOfThought { fields["chain_of_thought"] = s(c.rawValue) }
                if let o = file.objective { fields["objective"] = s(o.rawValue) }
                return .record(fields)
            }),
            "data.test": opt(data.test, s),
            "data.validation_split": f(data.validationSplit), "data.format": s(data.format.rawValue),
            "data.paired_answer": s(data.pairedAnswer.rawValue),
            "data.chain_of_thought": s(data.chainOfThought.rawValue), "data.train_on": s(data.trainOn.rawValue),
            "data.max_seq_len": i(data.maxSeqLen), "data.truncation": s(data.truncation.rawValue),
            "data.packing": b(data.packing), "data.on_bad_row": s(data.onBadRow.rawValue),
            "data.system_prompt": opt(data.systemPrompt, s),
            "training.objective": s(training.objective.rawValue), "training.dpo_beta": f(training.dpoBeta),
            "training.dpo_label_smoothing": f(training.dpoLabelSmoothing),
            "training.rpo_alpha": f(training.rpoAlpha),
            "training.epochs": i(training.epochs), "training.max_steps": opt(training.maxSteps, i),
            "training.batch_size": i(training.batchSize),
            "training.gradient_accumulation": i(training.gradientAccumulation),
            "training.learning_rate": f(training.learningRate), "training.weight_decay": f(training.weightDecay),
            "training.adam_beta1": f(training.adamBeta1), "training.adam_beta2": f(training.adamBeta2),
            "training.adam_epsilon": f(training.adamEpsilon), "training.max_grad_norm": f(training.maxGradNorm),
            "training.lr_scheduler": s(training.lrScheduler.rawValue),
            "training.warmup_steps": i(training.warmupSteps), "training.min_lr_ratio": f(training.minLRRatio),
            "training.eval_every": i(training.evalEvery), "training.eval_batches": opt(training.evalBatches, i),
            "checkpoint.every": i(checkpoint.every), "checkpoint.keep_last": i(checkpoint.keepLast),
            "checkpoint.keep_best": .bool(checkpoint.keepBest),
            "training.early_stopping_patience": opt(training.earlyStoppingPatience, i),
            "training.early_stopping_threshold": f(training.earlyStoppingThreshold),
            "training.gradient_checkpointing": b(training.gradientCheckpointing),
            "training.gradient_reduction": s(training.gradientReduction.rawValue),
            "logging.tensorboard": b(logging.tensorboard),
            "logging.progress": s(logging.progress.rawValue), "logging.every": i(logging.every),
        ]
    }

    /// Builds the typed config from validated values. The values were checked against the
    /// schema, so a failure here means the schema and this initialiser disagree.
    init(values: [String: ConfigValue]) throws {
        let v = ValueReader(values: values)
        run = RunSection(name: try v.string("run.name"), outputDir: try v.string("run.output_dir"),
                         seed: try v.int("run.seed"), launchDirectory: try v.optionalString("run.launch_directory"))
        model = ModelSection(path: try v.string("model.path"), weights: try v.choice("model.weights"),
                             adapter: try v.optionalString("model.adapter"))
        lora = LoRASection(
            rank: try v.int("lora.rank"), alpha: try v.double("lora.alpha"), useRSLoRA: try v.bool("lora.use_rslora"),
            dropout: try v.double("lora.dropout"), targetModules: try v.choiceList("lora.target_modules"),
            layers: try v.optionalIntList("lora.layers"))
        data = DataSection(
            train: try v.string("data.train"), mix: try v.mix("data.mix"), test: try v.optionalString("data.test"),
            validation: try v.optionalString("data.validation"),
            validationSplit: try v.double("data.validation_split"), format: try v.choice("data.format"),
            pairedAnswer: try v.choice("data.paired_answer"), chainOfThought: try v.choice("data.chain_of_thought"),
            trainOn: try v.choice("data.train_on"), maxSeqLen: try v.int("data.max_seq_len"),
            truncation: try v.choice("data.truncation"), packing: try v.bool("data.packing"),
            onBadRow: try v.choice("data.on_bad_row"), systemPrompt: try v.optionalString("data.system_prompt"))
        training = TrainingSection(
            objective: try v.choice("training.objective"), dpoBeta: try v.double("training.dpo_beta"),
            dpoLabelSmoothing: try v.double("training.dpo_label_smoothing"),
            rpoAlpha: try v.double("training.rpo_alpha"),
            epochs: try v.int("training.epochs"), maxSteps: try v.optionalInt("training.max_steps"),
            batchSize: try v.int("training.batch_size"),
            gradientAccumulation: try v.int("training.gradient_accumulation"),
            learningRate: try v.double("training.learning_rate"), weightDecay: try v.double("training.weight_decay"),
            adamBeta1: try v.double("training.adam_beta1"), adamBeta2: try v.double("training.adam_beta2"),
            adamEpsilon: try v.double("training.adam_epsilon"), maxGradNorm: try v.double("training.max_grad_norm"),
            lrScheduler: try v.choice("training.lr_scheduler"), warmupSteps: try v.int("training.warmup_steps"),
            minLRRatio: try v.double("training.min_lr_ratio"), evalEvery: try v.int("training.eval_every"),
            evalBatches: try v.optionalInt("training.eval_batches"),
            earlyStoppingPatience: try v.optionalInt("training.early_stopping_patience"),
            earlyStoppingThreshold: try v.double("training.early_stopping_threshold"),
            gradientCheckpointing: try v.bool("training.gradient_checkpointing"),
            gradientReduction: try v.choice("training.gradient_reduction"))
        checkpoint = CheckpointSection(every: try v.int("checkpoint.every"), keepLast: try v.int("checkpoint.keep_last"),
                                       keepBest: try v.bool("checkpoint.keep_best"))
        logging = LoggingSection(progress: try v.choice("logging.progress"), every: try v.int("logging.every"),
                                 tensorboard: try v.bool("logging.tensorboard"))
    }
}

/// Typed access to validated values; a mismatch is a programming error reported as a wrong type.
private struct ValueReader {
    let values: [String: ConfigValue]

    private func mismatch(_ path: String, _ expected: String) -> ConfigError {
        .wrongType(path: path, expected: expected, found: values[path]?.description ?? "nothing",
                   location: ConfigLocation(source: "<resolved config>", line: nil))
    }
    func string(_ p: String) throws -> String {
        guard case let .string(s)? = values[p] else { throw mismatch(p, "a string") }
        return s
    }
    func optionalString(_ p: String) throws -> String? { values[p] == .null ? nil : try string(p) }
    func int(_ p: String) throws -> Int {
        guard case let .int(i)? = values[p] else { throw mismatch(p, "an integer") }
        return i
    }
    func optionalInt(_ p: String) throws -> Int? { values[p] == .null ? nil : try int(p) }
    func mix(_ p: String) throws -> [RunConfig.DataSection.MixedFile] {
        guard let value = values[p], value != .null else { return [] }
        guard case let .list(items) = value else { throw mismatch(p, "a list of files") }
        return try items.map { item in
            guard case let .record(fields) = item, case let .string(path)? = fields["path"], case let .float(w)? = fields["weight"] else {
                throw mismatch(p, "a list of {path, weight, chain_of_thought, objective}")
            }
            var file = RunConfig.DataSection.MixedFile(path: path, weight: w)
            if let value = fields["chain_of_thought"] {
                guard case let .string(name) = value, let setting = ChainOfThoughtSetting(rawValue: name) else {
                    throw mismatch(p, "a chain_of_thought of \(ChainOfThoughtSetting.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                file.chainOfThought = setting
            }
            if let value = fields["objective"] {
                guard case let .string(name) = value, let objective = TrainingObjective(rawValue: name) else {
                    throw mismatch(p, "an objective of \(TrainingObjective.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                file.objective = objective
            }
            return file
        }
    }
    func double(_ p: String) throws -> Double {
        switch values[p] {
        case let .float(d)?: return d
        case let .int(i)?: return Double(i)
        default: throw mismatch(p, "a number")
        }
    }
    func bool(_ p: String) throws -> Bool {
        guard case let .bool(b)? = values[p] else { throw mismatch(p, "true or false") }
        return b
    }
    func choice<T: RawRepresentable>(_ p: String) throws -> T where T.RawValue == String {
        guard let value = T(rawValue: try string(p)) else { throw mismatch(p, "a known option") }
        return value
    }
    func choiceList<T: RawRepresentable>(_ p: String) throws -> [T] where T.RawValue == String {
        guard case let .list(items)? = values[p] else { throw mismatch(p, "a list") }
        return try items.map {
            guard case let .string(s) = $0, let value = T(rawValue: s) else { throw mismatch(p, "a list of options") }
            return value
        }
    }
    func optionalIntList(_ p: String) throws -> [Int]? {
        if values[p] == .null { return nil }
        guard case let .list(items)? = values[p] else { throw mismatch(p, "a list of integers") }
        return try items.map {
            guard case let .int(i) = $0 else { throw mismatch(p, "a list of integers") }
            return i
        }
    }
}

extension RunConfig {
    /// Settings that are valid but probably not meant, for the user to see before training.
    public var warnings: [String] {
        var found: [String] = []
        if let maxSteps = training.maxSteps, maxSteps < training.warmupSteps {
            found.append("training.max_steps \(maxSteps) is below training.warmup_steps \(training.warmupSteps): the run ends during warm-up and the learning rate never reaches training.learning_rate \(training.learningRate)")
        }
        return found
    }
}

extension RunConfig {
    /// A copy whose relative input paths (model, starting adapter, data) are made absolute
    /// against `run.launch_directory`, as a stored config's paths mean; unchanged without one.
    ///
    /// Usage: `let config = try RunConfig.parse(yaml: state.configYAML).resolvingStoredPaths()`
    /// `base` replaces the launch directory (`--set` paths given to `resume` are relative to the
    /// directory it runs in).
    public func resolvingStoredPaths(against base: String? = nil) -> RunConfig {
        guard let base = base ?? run.launchDirectory, !base.isEmpty else { return self }
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") || path.isEmpty ? path : ((base as NSString).appendingPathComponent(path) as NSString).standardizingPath
        }
        var copy = self
        copy.model.path = absolute(model.path)
        copy.model.adapter = model.adapter.map(absolute)
        copy.data.train = absolute(data.train)
        copy.data.validation = data.validation.map(absolute)
        copy.data.test = data.test.map(absolute)
        copy.data.mix = data.mix.map { .init(path: absolute($0.path), weight: $0.weight, chainOfThought: $0.chainOfThought, objective: $0.objective) }
        return copy
    }
}

extension RunConfig {
    /// `--set` overrides applied as the parser applies them (dotted keys and whole sections,
    /// every problem at once); relative paths they give are made absolute against the current
    /// directory, which is recorded as the launch directory.
    ///
    /// Usage: `let config = try stored.resolvingStoredPaths().withOverrides(["data.train=new.jsonl"])`
    public func withOverrides(_ overrides: [String], source: String = "--set") throws -> RunConfig {
        guard !overrides.isEmpty else { return self }
        let cwd = FileManager.default.currentDirectoryPath
        var config = try RunConfig.parse(yaml: resolvedYAML(), source: source, overrides: overrides).resolvingStoredPaths(against: cwd)
        config.run.launchDirectory = cwd
        return config
    }
}
