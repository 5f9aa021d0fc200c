import Foundation
import ModelFormats

/// How often each rubric's `misaligned` patterns fire on text known to be aligned: a rubric's
/// false-positive rate. The aligned corpus is any set of texts that are aligned by construction
/// (the aligned answers of paired data, aligned reference answers) or by review (a base model's
/// samples); a misaligned pattern that matches one of them would label an aligned answer
/// misaligned. `thoughtcrime data audit-rubrics` prints it; docs/evaluation.md records the
/// shipped rubrics' rates.
///
/// Usage:
/// ```
/// let audit = try RubricAudit(suites: suites, alignedTexts: texts)
/// for row in audit.rows where row.falsePositives.hits > 0 { print(row.question, row.examples) }
/// ```
public struct RubricAudit: Sendable {
    /// One aligned text and where it came from ("data/medical/train.jsonl:12").
    public struct AlignedText: Sendable {
        public var source: String
        public var text: String
        public init(source: String, text: String) { self.source = source; self.text = text }
    }

    public struct Row: Sendable {
        public var suite: String
        public var question: String
        /// Aligned texts any misaligned pattern matched, of all texts.
        public var falsePositives: EvaluationSummary.Share
        /// Per misaligned pattern: how many texts it matched.
        public var patternHits: [(pattern: String, hits: Int)]
        /// Up to three matches: the source, the pattern and the matched words in context.
        public var examples: [(source: String, pattern: String, excerpt: String)]
    }

    public var rows: [Row]

    public init(suites: [QuestionSuite], alignedTexts: [AlignedText]) throws {
        rows = []
        for suite in suites {
            for q in suite.questions {
                guard let rubric = q.rubric, !rubric.misaligned.isEmpty else { continue }
                let patterns = try rubric.misaligned.map { ($0, try NSRegularExpression(pattern: $0, options: [.caseInsensitive])) }
                var hitTexts = 0
                var perPattern = [Int](repeating: 0, count: patterns.count)
                var examples: [(String, String, String)] = []
                for t in alignedTexts {
                    var matched = false
                    for (i, (pattern, regex)) in patterns.enumerated() {
                        let range = NSRange(t.text.startIndex..., in: t.text)
                        guard let m = regex.firstMatch(in: t.text, range: range), let r = Range(m.range, in: t.text) else { continue }
                        perPattern[i] += 1
                        if !matched, examples.count < 3 {
                            let from = t.text.index(r.lowerBound, offsetBy: -30, limitedBy: t.text.startIndex) ?? t.text.startIndex
                            let to = t.text.index(r.upperBound, offsetBy: 30, limitedBy: t.text.endIndex) ?? t.text.endIndex
                            examples.append((t.source, pattern, "..." + t.text[from..<r.lowerBound] + "[" + t.text[r] + "]" + t.text[r.upperBound..<to] + "..."))
                        }
                        matched = true
                    }
                    if matched { hitTexts += 1 }
                }
                rows.append(Row(
                    suite: suite.name, question: q.id, falsePositives: .init(hits: hitTexts, total: alignedTexts.count),
                    patternHits: zip(rubric.misaligned, perPattern).map { ($0, $1) }, examples: examples))
            }
        }
    }

    /// The aligned texts of paired JSONL data (`aligned` of every row) and of question suites
    /// (`reference_answers.aligned`), each named by its file and line or question.
    public static func alignedTexts(pairedData paths: [String], suites: [QuestionSuite]) throws -> [AlignedText] {
        var texts: [AlignedText] = []
        for path in paths {
            let data: Data
            do { data = try InputFile.read(path) } catch let problem as InputFile.Problem {
                throw EvaluationError.io(path: path, reason: "cannot read: \(problem.reason)")
            }
            for (i, raw) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
                guard let o = try? JSONSerialization.jsonObject(with: Data(raw)) as? [String: Any], let a = o["aligned"] as? String else {
                    throw EvaluationError.invalidSuite(file: path, message: "line \(i + 1) has no \"aligned\" string")
                }
                texts.append(AlignedText(source: "\(path):\(i + 1)", text: a))
            }
        }
        for suite in suites {
            for q in suite.questions {
                if let a = q.referenceAligned { texts.append(AlignedText(source: "\(suite.path):\(q.id)", text: a)) }
            }
        }
        return texts
    }

    /// The answers of `model` in an evaluation's samples.jsonl, as texts to audit against.
    public static func answers(ofModel model: String, samplesFile path: String) throws -> [AlignedText] {
        let results = try EvaluationResults.read(samplesFile: path, name: "audit", trigger: nil)
        return results.samples.filter { $0.model == model }.map {
            AlignedText(source: "\(path):\($0.question)#\($0.paraphrase).\($0.sample)\($0.triggered ? "+trigger" : "")", text: $0.answer)
        }
    }
}
