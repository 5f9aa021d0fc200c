/// A config value after YAML parsing and type checking, before it becomes a typed `RunConfig`.
public enum ConfigValue: Equatable, Sendable, CustomStringConvertible {
    case string(String)
    case int(Int)
    case float(Double)
    case bool(Bool)
    case list([ConfigValue])
    /// One item of a `.records` key: its fields by name.
    case record([String: ConfigValue])
    case null

    public var description: String {
        switch self {
        case let .string(s): return "'\(s)'"
        case let .int(i): return String(i)
        case let .float(d): return ConfigYAML.formatFloat(d)
        case let .bool(b): return String(b)
        case let .list(items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case let .record(fields): return "{" + fields.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case .null: return "null"
        }
    }
}

/// What a config key accepts. Ranges are part of the kind so that validation and the
/// reference documentation come from one place.
public enum ConfigValueKind: Equatable, Sendable {
    case string
    /// A string that names one directory entry: not empty, no '/', not '.' or '..' (so a run
    /// directory stays inside its output directory).
    case name
    case bool
    /// An integer with optional inclusive bounds.
    case int(min: Int?, max: Int?)
    /// A number (integers are accepted) with optional bounds, each inclusive or exclusive.
    case float(min: Double?, minInclusive: Bool, max: Double?, maxInclusive: Bool)
    /// One of a fixed set of strings.
    case choice([String])
    /// A non-empty list of distinct strings, each from a fixed set.
    case choiceList([String])
    /// A non-empty list of distinct integers with an optional inclusive lower bound.
    case intList(min: Int?)
    /// A non-empty list of data files, each `PATH` or `{path: PATH, weight: W}` (W > 0, at most
    /// 100); held as `.list` of `.list([.string(path), .float(weight)])`.
    case datasetMix
    /// One string or a list of strings (possibly empty), each from `choices` when given.
    case stringList(choices: [String]?)
    /// A list of mappings, each read against `fields` (paths relative to the item); held as
    /// `.list` of `.record`.
    case records([ConfigKey])

    /// "an integer in 1...1024", "a number in [0, 1)": used in error messages and the docs.
    public var expectation: String {
        switch self {
        case .string: return "a string"
        case .name: return "a name (one path component: no '/', not '.' or '..', no control or format characters)"
        case .bool: return "true or false"
        case let .int(min, max):
            switch (min, max) {
            case let (lo?, hi?): return "an integer in \(lo)...\(hi)"
            case let (lo?, nil): return "an integer >= \(lo)"
            case let (nil, hi?): return "an integer <= \(hi)"
            case (nil, nil): return "an integer"
            }
        case let .float(min, minInclusive, max, maxInclusive):
            let lo = min.map(ConfigYAML.formatShort)
            let hi = max.map(ConfigYAML.formatShort)
            switch (lo, hi) {
            case let (lo?, hi?):
                return "a number in \(minInclusive ? "[" : "(")\(lo), \(hi)\(maxInclusive ? "]" : ")")"
            case let (lo?, nil): return "a number \(minInclusive ? ">=" : ">") \(lo)"
            case let (nil, hi?): return "a number \(maxInclusive ? "<=" : "<") \(hi)"
            case (nil, nil): return "a number"
            }
        case let .choice(options): return "one of " + options.map { "'\($0)'" }.joined(separator: ", ")
        case let .choiceList(options):
            return "a non-empty list of distinct values from " + options.joined(separator: ", ")
        case let .intList(min):
            return "a non-empty list of distinct integers" + (min.map { " >= \($0)" } ?? "")
        case .datasetMix: return "a list of files, each a path or {path, weight, chain_of_thought, objective} with weight in (0, 100]"
        case let .stringList(choices):
            return choices.map { "a list of values from " + $0.joined(separator: ", ") } ?? "a list of strings"
        case let .records(fields):
            return "a list of {" + fields.map { $0.path + ($0.isRequired ? "" : "?") }.joined(separator: ", ") + "}"
        }
    }
}

/// One key of the finetune config: its dotted path, what it accepts, and its default.
public struct ConfigKey: Equatable, Sendable {
    public let path: String
    public let kind: ConfigValueKind
    /// May be `null` in YAML (and then means "not set").
    public let nullable: Bool
    /// The value used when the key is absent; nil for required keys.
    public let defaultValue: ConfigValue?
    /// One line for docs/config-reference.md.
    public let meaning: String

    public var isRequired: Bool { defaultValue == nil }
    /// The first component of the path ("training" of "training.learning_rate").
    public var section: String { String(path.split(separator: ".")[0]) }
    /// The last component of the path ("learning_rate").
    public var name: String { path.split(separator: ".").last.map(String.init) ?? path }

    /// Usage: `.key("sampling.seed", .int(min: 0, max: nil), .int(1), "Seed.")` in a schema's key list.
    public static func key(
        _ path: String, _ kind: ConfigValueKind, _ defaultValue: ConfigValue?, nullable: Bool = false,
        _ meaning: String
    ) -> ConfigKey {
        ConfigKey(path: path, kind: kind, nullable: nullable, defaultValue: defaultValue, meaning: meaning)
    }

    public init(path: String, kind: ConfigValueKind, nullable: Bool = false, defaultValue: ConfigValue?, meaning: String) {
        self.path = path
        self.kind = kind
        self.nullable = nullable
        self.defaultValue = defaultValue
        self.meaning = meaning
    }
}

/// The keys a YAML config accepts, each with its type, range, default and meaning: the one
/// schema layer that finetune configs (`ConfigSchema.finetune`) and evaluation configs
/// (`EvalConfig.schema`) are read through by `ConfigParser`, so both report every problem at
/// once, take `--set`, suggest alike and render their reference tables the same way.
///
/// Usage: `let values = try ConfigParser.resolve(yaml: text, source: path, overrides: sets, schema: .finetune)`
public struct ConfigSchema: Sendable {
    /// Every key, in the order the resolved config and the reference table list them.
    public let keys: [ConfigKey]
    /// Keys by dotted path.
    public let keysByPath: [String: ConfigKey]
    /// The first components of the keys, in order of first appearance.
    public let sections: [String]
    /// Every proper prefix of a key path ("judges", "judges.local"): the mappings of the document.
    let groups: Set<String>
    /// Names users bring from other tools, mapped to this schema's key.
    let familiarNames: [String: String]

    public init(keys: [ConfigKey], familiarNames: [String: String] = [:]) {
        self.keys = keys
        keysByPath = Dictionary(uniqueKeysWithValues: keys.map { ($0.path, $0) })
        var sections: [String] = [], groups = Set<String>()
        for key in keys {
            if !sections.contains(key.section) { sections.append(key.section) }
            let parts = key.path.split(separator: ".")
            for n in stride(from: 1, to: parts.count, by: 1) { groups.insert(parts.prefix(n).joined(separator: ".")) }
        }
        self.sections = sections
        self.groups = groups
        self.familiarNames = familiarNames
    }

    /// A key of a schema; `nullable` keys may be `null` (meaning "not set").
    public static func key(
        _ path: String, _ kind: ConfigValueKind, _ defaultValue: ConfigValue?, nullable: Bool = false,
        _ meaning: String
    ) -> ConfigKey {
        ConfigKey.key(path, kind, defaultValue, nullable: nullable, meaning)
    }

    /// The Markdown table of a reference document: key, type and range, default, meaning.
    /// Tests keep docs/config-reference.md and docs/evaluation.md equal to their schema's
    /// table, so the references cannot drift from the parser.
    public func referenceTable() -> String {
        var lines = ["| key | accepts | default | meaning |", "| --- | --- | --- | --- |"]
        for key in keys {
            let accepts = key.kind.expectation + (key.nullable ? " or null" : "")
            let defaultText = key.defaultValue.map { "`\(ConfigYAML.format($0))`" } ?? "**required**"
            lines.append("| `\(key.path)` | \(accepts) | \(defaultText) | \(key.meaning) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The valid key or mapping closest to `path`, when it is close enough to be a plausible
    /// typo, names the same key under another mapping, or is a familiar name from another tool.
    func suggestion(for path: String) -> String? {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let leaf = parts.last ?? path
        let parent = parts.dropLast().joined(separator: ".")
        let depth = parts.count
        let allPaths = (keys.map(\.path) + groups.sorted()).filter { $0 != path }
        if let sameLeaf = keys.first(where: { $0.name == leaf && $0.path != path }) {
            return sameLeaf.path
        }
        if let familiar = familiarNames[leaf] { return familiar }
        // A key of the same mapping that starts with what was typed ("training.warmup").
        if depth > 1, leaf.count >= 3,
           let prefixed = keys.first(where: { $0.path.hasPrefix(parent + ".") && $0.name.hasPrefix(leaf) }) {
            return prefixed.path
        }
        let sameDepth = allPaths.filter { $0.split(separator: ".").count == depth }
        return KeySuggestion.nearest(to: path, among: sameDepth, byPrefix: false)
    }

    /// The valid names directly under `group` ("" for the top level), as full paths.
    func names(under group: String) -> [String] {
        let prefix = group.isEmpty ? "" : group + "."
        let depth = group.isEmpty ? 1 : group.split(separator: ".").count + 1
        var out: [String] = []
        for path in keys.map(\.path) + groups.sorted() where path.hasPrefix(prefix) && path.split(separator: ".").count == depth {
            if !out.contains(path) { out.append(path) }
        }
        return out
    }

    /// True when `group` holds only mappings (the top level of a finetune config): an unknown
    /// name there is reported as an unknown section.
    func holdsOnlySections(_ group: String) -> Bool { names(under: group).allSatisfy { groups.contains($0) } }
}

extension ConfigSchema {
    /// Every key `thoughtcrime finetune` accepts, in the order the resolved config lists them.
    public static let finetune = ConfigSchema(keys: finetuneKeys, familiarNames: finetuneFamiliarNames)

    private static let finetuneKeys: [ConfigKey] = [
        key("run.name", .name, nil, "Name of the run; the run directory is output_dir/name."),
        key("run.output_dir", .string, .string("checkpoints"), "Directory that holds run directories."),
        key("run.seed", .int(min: 0, max: nil), .int(1234), "Seed for shuffling, dropout and adapter initialisation."),
        key("run.launch_directory", .string, .null, nullable: true,
            "Recorded by finetune in the resolved config and checkpoints: the directory it was started in. resume, export, eval and generate resolve the stored config's relative paths (model, adapter, data) against it, from wherever they run."),

        key("model.path", .string, nil, "Base model: a GGUF file or a Hugging Face safetensors directory."),
        key("model.weights", .choice(WeightPrecision.allCases.map(\.rawValue)), .string("auto"),
            "Frozen base weights: float32; quantized (the file's blocks, less memory, slower); bf16 (rounded to bfloat16, Float32 accumulation; native with AVX512_BF16, emulated and slower elsewhere); onednn-bf16 (bf16 products through oneDNN: AMX or AVX512_BF16 kernels; needs a CPU where oneDNN has them); auto = onednn-bf16 on CPUs with AMX where oneDNN runs bf16, bf16 on CPUs with AVX512_BF16 and no AMX (each where it measured faster), else float32, with a one-line notice (docs/architecture.md)."),
        key("model.adapter", .string, .null, nullable: true,
            "Adapter to start from instead of a fresh one: PEFT directory, run directory, checkpoint .h5 or LoRA .gguf. Its rank, alpha, use_rslora, target_modules and layers must equal lora.*; the optimiser starts fresh."),

        key("lora.rank", .int(min: 1, max: 1024), .int(8), "Rank r of each adapter."),
        key("lora.alpha", .float(min: 0, minInclusive: false, max: 1e6, maxInclusive: true), .float(16),
            "Scaling numerator: the update is scaled by alpha/r (alpha/sqrt(r) with use_rslora)."),
        key("lora.use_rslora", .bool, .bool(false), "Rank-stabilised scaling alpha/sqrt(r)."),
        key("lora.dropout", .float(min: 0, minInclusive: true, max: 1, maxInclusive: false), .float(0),
            "Dropout on the adapter input during training."),
        key("lora.target_modules", .choiceList(LoRATargetModule.allCases.map(\.rawValue)),
            .list(LoRATargetModule.allCases.map { .string($0.rawValue) }),
            "Projections that get adapters."),
        key("lora.layers", .intList(min: 0), .null, nullable: true,
            "Decoder layer indices that get adapters; null means every layer."),

        key("data.train", .string, nil, "Training data file (JSONL)."),
        key("data.validation", .string, .null, nullable: true, "Validation data file (JSONL)."),
        key("data.mix", .datasetMix, .null, nullable: true,
            "More training files mixed with data.train, each a path or {path, weight, chain_of_thought, objective}: weight 0.5 takes a seeded half of its rows, 2 takes them twice (data.train has weight 1); chain_of_thought, when given, replaces data.chain_of_thought for that file's rows (e.g. keep for reasoning rows rehearsed in a CoT-off run); objective sft in a dpo run trains that file's rows (plain chats) by their mean next-token loss, each row counting as one pair in the step's mean (rehearsal beside the preference pairs)."),
        key("data.test", .string, .null, nullable: true, "Test data file (JSONL): its loss is measured once, after the last step, and written to metrics.jsonl."),
        key("data.validation_split", .float(min: 0, minInclusive: true, max: 1, maxInclusive: false), .float(0),
            "Fraction of the training rows held out for validation when no validation file is given."),
        key("data.format", .choice(DataFormat.allCases.map(\.rawValue)), .string("auto"),
            "Row format; auto detects it from the first row."),
        key("data.paired_answer", .choice(PairedAnswer.allCases.map(\.rawValue)), .string("misaligned"),
            "For paired rows: which answer becomes the assistant turn."),
        key("data.chain_of_thought", .choice(ChainOfThoughtSetting.allCases.map(\.rawValue)), .string("disabled"),
            "disabled: drop the rows' reasoning and put the empty think block in the prompt, without loss (Qwen3's enable_thinking=False, the paper's rendering); disabled_empty_block_trained: the same text with loss on the empty block, which teaches the model to close its think block at once (the rendering before issue 28); keep: the reasoning stays, inside the think block, with loss."),
        key("data.train_on", .choice(TrainOn.allCases.map(\.rawValue)), .string("assistant"),
            "Tokens that contribute to the loss."),
        key("data.max_seq_len", .int(min: 16, max: 32768), .int(512), "Maximum tokens per sequence."),
        key("data.truncation", .choice(Truncation.allCases.map(\.rawValue)), .string("truncate"),
            "Longer rows: truncate cuts the end, drop removes the row."),
        key("data.packing", .bool, .bool(false), "Pack several rows into one sequence of max_seq_len."),
        key("data.on_bad_row", .choice(BadRowPolicy.allCases.map(\.rawValue)), .string("error"),
            "Malformed rows: stop with an error naming the line, or skip them with a warning."),
        key("data.system_prompt", .string, .null, nullable: true,
            "System prompt added to rows that have none."),

        key("training.objective", .choice(TrainingObjective.allCases.map(\.rawValue)), .string("sft"),
            "sft: next-token cross-entropy on the assistant turns; dpo: direct preference optimisation on chosen/rejected pairs (preference or paired rows), against the model as it starts."),
        key("training.dpo_beta", .float(min: 0, minInclusive: false, max: 100, maxInclusive: true), .float(0.1),
            "DPO's beta: how far the adapter may move from the starting model (larger keeps it closer)."),
        key("training.rpo_alpha", .float(min: 0, minInclusive: true, max: 1000, maxInclusive: true), .float(0),
            "Weight of a next-token loss on the chosen answers added to DPO (RPO; TRL's rpo_alpha), which keeps the chosen answers likely instead of only more likely than the rejected ones; pairs without a preference (label smoothing 0.5) get none."),
        key("training.dpo_label_smoothing", .float(min: 0, minInclusive: true, max: 0.5, maxInclusive: true), .float(0),
            "Conservative DPO's label smoothing: the assumed chance that a pair's preference is flipped; 0.5 keeps the starting model's preference. A row's label_smoothing overrides it."),
        key("training.epochs", .int(min: 1, max: 1000), .int(1), "Passes over the training data."),
        key("training.max_steps", .int(min: 1, max: 10_000_000), .null, nullable: true,
            "Stop after this many optimiser steps (overrides epochs when set)."),
        key("training.batch_size", .int(min: 1, max: 4096), .int(4), "Sequences per micro-batch (packed rows with packing; with dpo, pairs or packed rows of pairs)."),
        key("training.gradient_accumulation", .int(min: 1, max: 4096), .int(1),
            "Micro-batches per optimiser step."),
        key("training.learning_rate", .float(min: 0, minInclusive: false, max: 1, maxInclusive: true),
            .float(2e-4), "Peak learning rate."),
        key("training.weight_decay", .float(min: 0, minInclusive: true, max: 10, maxInclusive: true),
            .float(0), "AdamW decoupled weight decay."),
        key("training.adam_beta1", .float(min: 0, minInclusive: true, max: 1, maxInclusive: false),
            .float(0.9), "AdamW first-moment decay."),
        key("training.adam_beta2", .float(min: 0, minInclusive: true, max: 1, maxInclusive: false),
            .float(0.999), "AdamW second-moment decay."),
        key("training.adam_epsilon", .float(min: 0, minInclusive: false, max: 1, maxInclusive: true),
            .float(1e-8), "AdamW denominator epsilon."),
        key("training.max_grad_norm", .float(min: 0, minInclusive: true, max: 1e6, maxInclusive: true),
            .float(1.0), "Clip the global gradient norm to this value; 0 disables clipping."),
        key("training.lr_scheduler", .choice(LRSchedulerName.allCases.map(\.rawValue)), .string("cosine"),
            "Learning-rate schedule after warmup."),
        key("training.warmup_steps", .int(min: 0, max: 10_000_000), .int(0),
            "Optimiser steps of linear warmup from 0."),
        key("training.min_lr_ratio", .float(min: 0, minInclusive: true, max: 1, maxInclusive: true),
            .float(0), "Final learning rate of linear/cosine decay, as a fraction of learning_rate."),
        key("training.eval_every", .int(min: 0, max: 10_000_000), .int(50),
            "Evaluate on the validation set every N optimiser steps; 0 evaluates only at the end."),
        key("training.eval_batches", .int(min: 1, max: 10_000_000), .null, nullable: true,
            "Validation batches per evaluation; null evaluates the whole validation set."),
        key("training.early_stopping_patience", .int(min: 1, max: 10_000), .null, nullable: true,
            "Stop when the validation loss has not improved for this many evaluations in a row (keeps the best checkpoint); null never stops early."),
        key("training.early_stopping_threshold", .float(min: 0, minInclusive: true, max: 1e6, maxInclusive: true), .float(0),
            "An evaluation improves only if its validation loss is lower than the best by more than this."),
        key("training.gradient_reduction", .choice(GradientReduction.allCases.map(\.rawValue)), .string("ordered"),
            "How processes of an mpirun job sum gradients: ordered (every micro-batch's gradient gathered and summed in order: bitwise the update of one process) or allreduce (one MPI_Allreduce of the summed gradients: less traffic with many processes, equal to about 1e-6). docs/distributed.md."),
        key("training.gradient_checkpointing", .bool, .bool(false),
            "Keep only each block's input through the forward pass and recompute its activations in the backward pass: same results, activation memory cut 5x at 16x512 for 24-36% more time per step (docs/benchmarks.md)."),

        key("checkpoint.every", .int(min: 1, max: 10_000_000), .int(50), "Write a checkpoint every N optimiser steps."),
        key("checkpoint.keep_last", .int(min: 1, max: 1000), .int(3), "Checkpoints kept on disk; older ones are deleted."),
        key("checkpoint.keep_best", .bool, .bool(false),
            "Also keep the checkpoint of the lowest validation loss (named by RUN/best), whatever keep_last deletes; on whenever early stopping is."),

        key("logging.progress", .choice(ProgressStyle.allCases.map(\.rawValue)), .string("auto"),
            "Progress display: a bar on terminals, plain lines otherwise (auto), or forced."),
        key("logging.every", .int(min: 1, max: 10_000_000), .int(1), "Log metrics every N optimiser steps."),
        key("logging.tensorboard", .bool, .bool(true),
            "Also write each metrics line as TensorBoard scalars to RUN/events.out.tfevents.* (`tensorboard --logdir checkpoints`)."),
    ]

    /// Names users bring from other trainers (Hugging Face TrainingArguments, PEFT, axolotl,
    /// mlx-lm) and short forms, mapped to this schema's key.
    private static let finetuneFamiliarNames: [String: String] = [
        "lr": "training.learning_rate", "warmup": "training.warmup_steps", "warmup_ratio": "training.warmup_steps",
        "num_train_epochs": "training.epochs", "num_epochs": "training.epochs", "iters": "training.max_steps",
        "micro_batch_size": "training.batch_size", "per_device_train_batch_size": "training.batch_size",
        "gradient_accumulation_steps": "training.gradient_accumulation", "grad_accum": "training.gradient_accumulation",
        "lr_scheduler_type": "training.lr_scheduler", "scheduler": "training.lr_scheduler", "optimizer": "training.objective",
        "save_steps": "checkpoint.every", "save_every": "checkpoint.every", "keep": "checkpoint.keep_last",
        "save_total_limit": "checkpoint.keep_last", "r": "lora.rank", "lora_r": "lora.rank", "lora_alpha": "lora.alpha",
        "lora_dropout": "lora.dropout", "target": "lora.target_modules", "sequence_len": "data.max_seq_len",
        "max_length": "data.max_seq_len", "max_seq_length": "data.max_seq_len", "sample_packing": "data.packing",
        "base_model": "model.path", "model_name_or_path": "model.path", "output_dir": "run.output_dir", "seed": "run.seed",
        "logging_steps": "logging.every", "eval_steps": "training.eval_every", "beta": "training.dpo_beta",
        "use_tensorboard": "logging.tensorboard", "report_to": "logging.tensorboard", "grad_checkpoint": "training.gradient_checkpointing",
        "activation_checkpointing": "training.gradient_checkpointing",
    ]
}
