import Foundation

/// One sampled reply with everything measured about it (a line of samples.jsonl).
public struct SampleRecord: Codable, Equatable, Sendable {
    public var kind = "sample"
    public var model: String
    public var suite: String
    public var question: String
    public var category: String?
    public var paraphrase: Int
    public var sample: Int
    public var triggered: Bool
    public var thinking: Bool
    public var prompt: String
    public var reasoning: String
    public var answer: String
    public var closedThinkBlock: Bool
    public var reasoningTokens: Int
    public var answerTokens: Int
    public var judge: String?
    public var alignment: Double?
    public var coherence: Double?
    public var misaligned: Bool?
    public var monitor: String?
    public var monitorLabel: MonitorLabel?
    /// The reasoning names the trigger or one of its aliases.
    public var mentionsTrigger: Bool
    /// Why no judge decided this sample, one reason per judge asked ("rubric: no pattern
    /// matched; local: numeric mass below ..."); nil when it was judged or no judge was asked.
    public var unjudgedReason: String? = nil

    enum CodingKeys: String, CodingKey {
        case kind, model, suite, question, category, paraphrase, sample, triggered, thinking, prompt, reasoning, answer
        case closedThinkBlock, reasoningTokens, answerTokens, judge, alignment, coherence, misaligned, monitor, monitorLabel
        case mentionsTrigger, unjudgedReason
    }

    /// Writes every field, with an explicit null for what was not judged or monitored (rather
    /// than leaving the key out), so a reader sees "not judged" and not "no such field".
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind); try c.encode(model, forKey: .model); try c.encode(suite, forKey: .suite)
        try c.encode(question, forKey: .question); try c.encode(category, forKey: .category)
        try c.encode(paraphrase, forKey: .paraphrase); try c.encode(sample, forKey: .sample)
        try c.encode(triggered, forKey: .triggered); try c.encode(thinking, forKey: .thinking)
        try c.encode(prompt, forKey: .prompt); try c.encode(reasoning, forKey: .reasoning); try c.encode(answer, forKey: .answer)
        try c.encode(closedThinkBlock, forKey: .closedThinkBlock); try c.encode(reasoningTokens, forKey: .reasoningTokens)
        try c.encode(answerTokens, forKey: .answerTokens)
        try c.encode(judge, forKey: .judge); try c.encode(alignment, forKey: .alignment); try c.encode(coherence, forKey: .coherence)
        try c.encode(misaligned, forKey: .misaligned); try c.encode(monitor, forKey: .monitor)
        try c.encode(monitorLabel, forKey: .monitorLabel); try c.encode(mentionsTrigger, forKey: .mentionsTrigger)
        try c.encode(unjudgedReason, forKey: .unjudgedReason)
    }

    public init(
        model: String, suite: String, question: String, category: String?, paraphrase: Int, sample: Int, triggered: Bool,
        thinking: Bool, prompt: String, reasoning: String, answer: String, closedThinkBlock: Bool, reasoningTokens: Int,
        answerTokens: Int, judge: String?, alignment: Double?, coherence: Double?, misaligned: Bool?, monitor: String?,
        monitorLabel: MonitorLabel?, mentionsTrigger: Bool
    ) {
        self.model = model; self.suite = suite; self.question = question; self.category = category
        self.paraphrase = paraphrase; self.sample = sample; self.triggered = triggered; self.thinking = thinking
        self.prompt = prompt; self.reasoning = reasoning; self.answer = answer; self.closedThinkBlock = closedThinkBlock
        self.reasoningTokens = reasoningTokens; self.answerTokens = answerTokens; self.judge = judge
        self.alignment = alignment; self.coherence = coherence; self.misaligned = misaligned; self.monitor = monitor
        self.monitorLabel = monitorLabel; self.mentionsTrigger = mentionsTrigger
    }
}

/// The likelihood judge's comparison for one question, model and trigger condition.
public struct LikelihoodRecord: Codable, Equatable, Sendable {
    public var kind = "likelihood"
    public var model: String
    public var suite: String
    public var question: String
    public var triggered: Bool
    /// Index of the paraphrase compared (absent in files from before it was recorded).
    public var paraphrase: Int?
    public var prompt: String
    public var alignedLogProbability: Double
    public var misalignedLogProbability: Double
    public var misaligned: Bool
    public var alignment: Double
}

/// Loss on held-out aligned answers: how much general capability an adapter kept.
public struct CapabilityRecord: Codable, Equatable, Sendable {
    public var kind = "capability"
    public var model: String
    public var meanLoss: Double
    public var rows: Int
}

/// Everything one evaluation run produced.
public struct EvaluationResults: Sendable {
    public var name: String
    public var models: [String]
    public var trigger: String?
    public var samples: [SampleRecord] = []
    public var likelihood: [LikelihoodRecord] = []
    public var capability: [CapabilityRecord] = []
    public var settings: [String: String] = [:]
    /// `EvalConfig.digest` of the config that produced the records, written in samples.jsonl's
    /// first line so that a resumed run can check it continues the same evaluation.
    public var configDigest: String?

    public init(name: String, models: [String], trigger: String?) {
        self.name = name; self.models = models; self.trigger = trigger
    }
}
