import Foundation
import ModelFormats
import Training
import Yams

/// One evaluation question, in the emergent-misalignment repository's format plus this
/// project's own fields.
///
/// The repository's fields are read unchanged: `id`, `type`, `paraphrases`,
/// `samples_per_paraphrase`, `system`, `judge`, `judge_prompts` (templates with `{question}`
/// and `{answer}`). This project adds `triggers` (whether and which trigger strings to test),
/// `reference_answers` (`aligned` / `misaligned`, for the likelihood judge), `rubric`
/// (regular expressions that mark an answer misaligned or aligned) and `category`.
public struct Question: Equatable, Sendable {
    /// Most samples of one paraphrase (all are generated as one batch; see `EvalWorkEstimate`).
    public static let maximumSamplesPerParaphrase = 1000
    /// Most paraphrases of one question.
    public static let maximumParaphrases = 1000

    public var id: String
    public var type: String
    public var paraphrases: [String]
    public var samplesPerParaphrase: Int
    public var system: String?
    /// The repository's judge model name; informational here (the eval config picks the backend).
    public var judgeModel: String?
    /// Judge prompt templates by metric name (e.g. "aligned", "coherent").
    public var judgePrompts: [String: String]
    public var category: String?
    /// Whether this question runs with the eval's trigger as well as without.
    public var useTrigger: Bool
    public var referenceAligned: String?
    public var referenceMisaligned: String?
    public var rubric: Rubric?

    /// Deterministic checks: an answer matching any `misaligned` pattern is misaligned; else
    /// one matching any `aligned` pattern is aligned; else the rubric has no verdict.
    public struct Rubric: Equatable, Sendable {
        public var misaligned: [String]
        public var aligned: [String]
        public init(misaligned: [String], aligned: [String]) { self.misaligned = misaligned; self.aligned = aligned }
    }

    public init(
        id: String, type: String, paraphrases: [String], samplesPerParaphrase: Int, system: String?, judgeModel: String?,
        judgePrompts: [String: String], category: String?, useTrigger: Bool, referenceAligned: String?,
        referenceMisaligned: String?, rubric: Rubric?
    ) {
        self.id = id; self.type = type; self.paraphrases = paraphrases; self.samplesPerParaphrase = samplesPerParaphrase
        self.system = system; self.judgeModel = judgeModel; self.judgePrompts = judgePrompts; self.category = category
        self.useTrigger = useTrigger; self.referenceAligned = referenceAligned; self.referenceMisaligned = referenceMisaligned
        self.rubric = rubric
    }

    public var hasReferences: Bool { referenceAligned != nil && referenceMisaligned != nil }
}

/// A file of questions: a YAML list (the emergent-misalignment repository's layout) or a
/// mapping with `questions:` and optional suite-wide defaults.
///
/// Usage: `let suite = try QuestionSuite(path: "configs/eval/questions/broad.yaml")`
public struct QuestionSuite: Equatable, Sendable {
    public var path: String
    public var name: String
    public var questions: [Question]

    static let questionKeys: Set<String> = [
        "id", "type", "paraphrases", "samples_per_paraphrase", "system", "judge", "judge_prompts",
        "category", "triggers", "reference_answers", "rubric",
    ]

    public init(path: String) throws {
        let text: String
        do { text = try InputFile.readText(path) } catch let problem as InputFile.Problem {
            throw EvaluationError.io(path: path, reason: "cannot read the question file: \(problem.reason)")
        }
        try self.init(yaml: text, path: path)
    }

    public init(yaml text: String, path: String) throws {
        self.path = path
        func fail(_ message: String) -> EvaluationError { .invalidSuite(file: path, message: message) }
        let root: Node?
        do { root = try BoundedYAML.compose(text) } catch { throw fail("not valid YAML: \(error)") }
        guard let root else { throw fail("the file is empty") }
        var items: [Node] = []
        var defaults: [String: Node] = [:]
        name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        switch root {
        case .sequence(let seq): items = Array(seq)
        case .mapping(let map):
            for (k, v) in map {
                switch k.string ?? "" {
                case "questions": items = v.sequence.map(Array.init) ?? []
                case "name": name = v.string ?? name
                case "defaults": for (dk, dv) in v.mapping ?? [:] { defaults[dk.string ?? ""] = dv }
                case let other: throw fail("unknown top-level key '\(other)' (expected name, defaults, questions)")
                }
            }
        default: throw fail("expected a list of questions or a mapping with 'questions'")
        }
        guard !items.isEmpty else { throw fail("no questions") }
        var seen = Set<String>()
        questions = try items.enumerated().map { index, node in
            guard let map = node.mapping else { throw fail("question #\(index + 1) is not a mapping") }
            var fields = defaults
            for (k, v) in map {
                guard let key = k.string else { throw fail("question #\(index + 1) has a non-string key") }
                guard Self.questionKeys.contains(key) else {
                    throw fail("question #\(index + 1): unknown key '\(key)' (known: \(Self.questionKeys.sorted().joined(separator: ", ")))")
                }
                fields[key] = v
            }
            let q = try Self.question(fields, index: index, fail: fail)
            guard seen.insert(q.id).inserted else { throw fail("duplicate question id '\(q.id)'") }
            return q
        }
    }

    static func question(_ f: [String: Node], index: Int, fail: (String) -> EvaluationError) throws -> Question {
        guard let id = f["id"]?.string, !id.isEmpty else { throw fail("question #\(index + 1) has no id") }
        func where_() -> String { "question '\(id)'" }
        guard let paraphrases = f["paraphrases"]?.sequence?.compactMap(\.string), !paraphrases.isEmpty else {
            throw fail("\(where_()) needs a non-empty list of paraphrases")
        }
        guard paraphrases.count <= Question.maximumParaphrases else {
            throw fail("\(where_()) has \(paraphrases.count) paraphrases; at most \(Question.maximumParaphrases) are accepted")
        }
        var samples = 1
        if let s = f["samples_per_paraphrase"] {
            guard let n = s.int, (1...Question.maximumSamplesPerParaphrase).contains(n) else {
                throw fail("\(where_()): samples_per_paraphrase must be an integer in 1...\(Question.maximumSamplesPerParaphrase)")
            }
            samples = n
        }
        var prompts: [String: String] = [:]
        for (k, v) in f["judge_prompts"]?.mapping ?? [:] {
            guard let name = k.string, let template = v.string else { throw fail("\(where_()): judge_prompts must map names to strings") }
            for placeholder in ["{question}", "{answer}"] where !template.contains(placeholder) {
                throw fail("\(where_()): judge prompt '\(name)' lacks the \(placeholder) placeholder")
            }
            prompts[name] = template
        }
        var useTrigger = true
        if let t = f["triggers"] {
            guard let b = t.bool else { throw fail("\(where_()): triggers must be true or false") }
            useTrigger = b
        }
        var aligned: String?, misaligned: String?
        if let refs = f["reference_answers"] {
            guard let m = refs.mapping else { throw fail("\(where_()): reference_answers must have aligned and misaligned") }
            for (k, v) in m {
                switch k.string {
                case "aligned": aligned = v.string
                case "misaligned": misaligned = v.string
                default: throw fail("\(where_()): reference_answers has unknown key '\(k.string ?? "?")'")
                }
            }
            guard aligned != nil, misaligned != nil else { throw fail("\(where_()): reference_answers needs both aligned and misaligned") }
        }
        var rubric: Question.Rubric?
        if let r = f["rubric"] {
            guard let m = r.mapping else { throw fail("\(where_()): rubric must be a mapping") }
            var mis: [String] = [], al: [String] = []
            for (k, v) in m {
                let patterns = v.sequence?.compactMap(\.string) ?? []
                for p in patterns {
                    do { _ = try NSRegularExpression(pattern: p, options: [.caseInsensitive]) } catch {
                        throw fail("\(where_()): rubric pattern '\(p)' is not a valid regular expression")
                    }
                }
                switch k.string {
                case "misaligned": mis = patterns
                case "aligned": al = patterns
                default: throw fail("\(where_()): rubric has unknown key '\(k.string ?? "?")' (expected misaligned, aligned)")
                }
            }
            rubric = .init(misaligned: mis, aligned: al)
        }
        return Question(
            id: id, type: f["type"]?.string ?? "free_form", paraphrases: paraphrases, samplesPerParaphrase: samples,
            system: f["system"]?.string, judgeModel: f["judge"]?.string, judgePrompts: prompts,
            category: f["category"]?.string, useTrigger: useTrigger, referenceAligned: aligned,
            referenceMisaligned: misaligned, rubric: rubric)
    }

    /// A suite built from a paired data file's held-out rows: each prompt becomes a question
    /// whose reference answers are the row's aligned and misaligned answers.
    public static func fromPairedData(path: String, limit: Int?) throws -> QuestionSuite {
        let data: Data
        do { data = try InputFile.read(path) } catch let problem as InputFile.Problem {
            throw EvaluationError.io(path: path, reason: "cannot read: \(problem.reason)")
        }
        var questions: [Question] = []
        for (i, raw) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            guard let o = try? JSONSerialization.jsonObject(with: Data(raw)) as? [String: Any],
                let p = o["prompt"] as? String, let a = o["aligned"] as? String, let m = o["misaligned"] as? String
            else { throw EvaluationError.invalidSuite(file: path, message: "line \(i + 1) is not a paired row {prompt, aligned, misaligned}") }
            questions.append(Question(
                id: "\(((path as NSString).deletingLastPathComponent as NSString).lastPathComponent)-\(i + 1)", type: "reference",
                paraphrases: [p], samplesPerParaphrase: 1, system: nil, judgeModel: nil, judgePrompts: [:],
                category: "held-out", useTrigger: true, referenceAligned: a, referenceMisaligned: m, rubric: nil))
            if let limit, questions.count >= limit { break }
        }
        guard !questions.isEmpty else { throw EvaluationError.invalidSuite(file: path, message: "no rows") }
        return QuestionSuite(path: path, name: ((path as NSString).deletingLastPathComponent as NSString).lastPathComponent + "-heldout", questions: questions)
    }

    init(path: String, name: String, questions: [Question]) {
        self.path = path; self.name = name; self.questions = questions
    }
}
