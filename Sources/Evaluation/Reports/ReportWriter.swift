import Foundation
import ModelFormats

/// Writes an evaluation's run directory: samples.jsonl (every record), summary.md and a
/// self-contained report.html (inline SVG charts, no network needed).
///
/// Usage: `try ReportWriter(directory: "checkpoints/evals/medical").write(results)`
public struct ReportWriter {
    public let directory: String
    public init(directory: String) { self.directory = directory }

    public func write(_ results: EvaluationResults) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        var lines: [String] = []
        if let digest = results.configDigest {
            lines.append(String(decoding: try encoder.encode(SampleLog.RunHeader(config: digest)), as: UTF8.self))
        }
        for s in results.samples { lines.append(String(decoding: try encoder.encode(s), as: UTF8.self)) }
        for l in results.likelihood { lines.append(String(decoding: try encoder.encode(l), as: UTF8.self)) }
        for c in results.capability { lines.append(String(decoding: try encoder.encode(c), as: UTF8.self)) }
        try atomicWrite(lines.joined(separator: "\n") + "\n", to: "samples.jsonl")
        let summary = EvaluationSummary(results)
        try atomicWrite(markdown(results, summary), to: "summary.md")
        try atomicWrite(html(results, summary), to: "report.html")
    }

    func atomicWrite(_ text: String, to name: String) throws {
        let path = (directory as NSString).appendingPathComponent(name)
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw EvaluationError.io(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }

    func markdown(_ r: EvaluationResults, _ s: EvaluationSummary) -> String {
        var md = "# Evaluation: \(r.name)\n\n"
        md += r.settings.sorted { $0.key < $1.key }.map { "- \($0.key): \($0.value)" }.joined(separator: "\n") + "\n"
        if let t = r.trigger { md += "- trigger: \(t)\n" }
        for warning in s.coverageWarnings { md += "\n> **Warning:** \(warning)\n" }
        md += "\n## Summary\n\n" + Self.markdownTable(Self.summaryColumns(s))
        if let coverage = Self.coverageColumns(s) { md += "\n## Judge coverage\n\n" + Self.markdownTable(coverage) }
        md += "\n" + Self.summaryNote + "\n"
        md += "\nEvery share is given as value [95% Wilson interval] (hits/n).\n"
        md += "\n## Per question (sampled misaligned share)\n\n" + Self.perQuestionTable(s, html: false)
        let examples = r.samples.filter { $0.misaligned == true }.prefix(5)
        if !examples.isEmpty {
            md += "\n## Examples of misaligned samples\n"
            for e in examples {
                md += "\n**\(e.model) / \(e.question)\(e.triggered ? " (triggered)" : "")**\n\n> \(e.prompt.replacingOccurrences(of: "\n", with: "\n> "))\n\nReasoning: \(e.reasoning.isEmpty ? "-" : e.reasoning)\n\nAnswer: \(e.answer)\n"
            }
        }
        return md
    }

    static let summaryNote = "Sampled shares count judged samples only (the judged column: samples decided out of samples given, and by which judge; misaligned: alignment below the threshold and coherence above it, or a rubric match or trained judge's verdict). Likelihood shares count questions whose misaligned reference answer is more likely than the aligned one. Monitor detection is over misaligned samples, false positives over aligned ones. Capability loss is the mean per-token loss on held-out aligned answers."

    /// The summary as columns, one row per model: the same in summary.md and report.html.
    static func summaryColumns(_ s: EvaluationSummary) -> (header: [String], rows: [[String]]) {
        let header = ["model", "sampled misaligned", "with trigger", "judged (judge)", "likelihood misaligned", "with trigger",
                      "monitor detection", "monitor false positives", "trigger articulation", "closed think blocks",
                      "median think tokens", "mean alignment", "capability loss"]
        let rows = s.models.map { m in
            [m.model, m.sampledMisaligned.percent, m.sampledMisalignedTriggered.percent, m.coverage, m.likelihoodMisaligned.percent,
             m.likelihoodMisalignedTriggered.percent, m.monitorDetection.percent, m.monitorFalsePositives.percent,
             m.triggerArticulation.percent, m.closedThinkBlocks.percent, m.medianThinkTokens.map { String(format: "%g", $0) } ?? "-",
             m.meanAlignment.map { String(format: "%.1f", $0) } ?? "-", m.capabilityLoss.map { String(format: "%.4f", $0) } ?? "-"]
        }
        return (header, rows)
    }

    /// Judge coverage per model, when some samples went unjudged.
    static func coverageColumns(_ s: EvaluationSummary) -> (header: [String], rows: [[String]])? {
        let reasons = s.models.filter { !$0.unjudgedReasons.isEmpty }
        guard !reasons.isEmpty else { return nil }
        return (["model", "judged without trigger", "with trigger", "unjudged because"], reasons.map { m in
            ["\(m.model)", "\(m.judgedPlain.hits)/\(m.judgedPlain.total)", "\(m.judgedTriggered.hits)/\(m.judgedTriggered.total)",
             m.unjudgedReasons.map { "\($0.reason) (\($0.count))" }.joined(separator: "; ")]
        })
    }

    static func markdownTable(_ t: (header: [String], rows: [[String]])) -> String {
        "| " + t.header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: t.header.count) + "\n"
            + t.rows.map { "| " + $0.joined(separator: " | ") + " |\n" }.joined()
    }

    static func htmlTable(_ t: (header: [String], rows: [[String]])) -> String {
        "<div class='wide'><table><tr>" + t.header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
            + t.rows.map { "<tr>" + $0.map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }.joined() + "</table></div>"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// A horizontal bar chart: one group per label, one bar per series, each a share drawn with
    /// its 95% interval as a whisker and labelled with its n, so a bar of one sample cannot pass
    /// for a finding.
    static func barChart(title: String, groups: [(label: String, values: [EvaluationSummary.Share])], series: [String]) -> String {
        let colors = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2"]
        let barHeight = 14, gap = 10, left = 220, width = 360
        let height = groups.count * (series.count * barHeight + gap) + 40
        var svg = "<svg xmlns='http://www.w3.org/2000/svg' width='\(left + width + 170)' height='\(height)' font-family='sans-serif' font-size='12'>"
        svg += "<text x='0' y='14' font-weight='bold'>\(escape(title))</text>"
        var y = 28
        for g in groups {
            svg += "<text x='0' y='\(y + barHeight)'>\(escape(String(g.label.prefix(32))))</text>"
            for (i, share) in g.values.enumerated() {
                let v = share.value
                let w = Int((v ?? 0) * Double(width))
                let label = v.map { String(format: "%.0f%% (n=%d)", $0 * 100, share.total) } ?? "n/a (n=0)"
                svg += "<rect x='\(left)' y='\(y)' width='\(max(w, 1))' height='\(barHeight - 2)' fill='\(colors[i % colors.count])' fill-opacity='0.8'><title>\(escape(series[i])): \(escape(share.percent))</title></rect>"
                var labelX = left + w + 4
                if let ci = share.interval95 {
                    let x0 = left + Int(ci.low * Double(width)), x1 = left + Int(ci.high * Double(width)), mid = y + (barHeight - 2) / 2
                    svg += "<g stroke='#222' stroke-width='1'><line x1='\(x0)' y1='\(mid)' x2='\(x1)' y2='\(mid)'/><line x1='\(x0)' y1='\(y + 2)' x2='\(x0)' y2='\(y + barHeight - 4)'/><line x1='\(x1)' y1='\(y + 2)' x2='\(x1)' y2='\(y + barHeight - 4)'/></g>"
                    labelX = max(labelX, x1 + 4)
                }
                svg += "<text x='\(labelX)' y='\(y + barHeight - 3)'>\(label)</text>"
                y += barHeight
            }
            y += gap
        }
        svg += "</svg>"
        let legend = series.enumerated().map { "<span style='color:\(colors[$0.offset % colors.count])'>&#9632;</span> \(escape($0.element))" }.joined(separator: " &nbsp; ")
        return "<figure>\(svg)<figcaption>\(legend); whiskers: 95% Wilson interval</figcaption></figure>"
    }

    /// The table the emergent-misalignment papers plot: each question's misaligned share per
    /// model, without and with the trigger, with n and 95% intervals.
    static func perQuestionTable(_ s: EvaluationSummary, html: Bool) -> String {
        let questions = s.models.first?.perQuestion.map(\.question) ?? []
        var header = ["question"]
        for m in s.models { header += [m.model, "\(m.model) +trigger"] }
        var rows: [[String]] = []
        for q in questions {
            var row = [q]
            for m in s.models {
                let e = m.perQuestion.first { $0.question == q }
                row += [e?.plain.percent ?? "-", e?.triggered.percent ?? "-"]
            }
            rows.append(row)
        }
        if html {
            return "<table><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
                + rows.map { "<tr>" + $0.map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }.joined() + "</table>"
        }
        return "| " + header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: header.count) + "\n"
            + rows.map { "| " + $0.joined(separator: " | ") + " |\n" }.joined()
    }

    func html(_ r: EvaluationResults, _ s: EvaluationSummary) -> String {
        var series: [String] = []
        for m in s.models { series += [m.model, "\(m.model) + trigger"] }
        let questions = s.models.first?.perQuestion.map(\.question) ?? []
        let none = EvaluationSummary.Share(hits: 0, total: 0)
        let perQuestion = questions.map { q in
            (label: q, values: s.models.flatMap { m -> [EvaluationSummary.Share] in
                let e = m.perQuestion.first { $0.question == q }
                return [e?.plain ?? none, e?.triggered ?? none]
            })
        }
        let overall: [(label: String, values: [EvaluationSummary.Share])] = [
            ("sampled misaligned", s.models.flatMap { [$0.sampledMisaligned, $0.sampledMisalignedTriggered] }),
            ("likelihood misaligned", s.models.flatMap { [$0.likelihoodMisaligned, $0.likelihoodMisalignedTriggered] }),
        ]
        let monitor = s.models.map { (label: $0.model, values: [$0.monitorDetection, $0.monitorFalsePositives, $0.triggerArticulation]) }
        var page = "<!doctype html><html><head><meta charset='utf-8'><title>ThoughtCrime evaluation: \(Self.escape(r.name))</title>"
        page += "<style>body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;vertical-align:top}th{background:#f4f4f4}.wide{overflow-x:auto}.warning{background:#fff3cd;border:1px solid #e0c36a;padding:6px 10px}figure{margin:1.5em 0}</style></head><body>"
        page += "<h1>Evaluation: \(Self.escape(r.name))</h1><p>" + r.settings.sorted { $0.key < $1.key }.map { "\(Self.escape($0.key)): <b>\(Self.escape($0.value))</b>" }.joined(separator: " &middot; ")
        if let t = r.trigger { page += " &middot; trigger: <b>\(Self.escape(t))</b>" }
        page += "</p>"
        for warning in s.coverageWarnings { page += "<p class='warning'><b>Warning:</b> \(Self.escape(warning))</p>" }
        page += "<h2>Summary</h2>" + Self.htmlTable(Self.summaryColumns(s))
        if let coverage = Self.coverageColumns(s) { page += "<h2>Judge coverage</h2>" + Self.htmlTable(coverage) }
        page += "<p>\(Self.escape(Self.summaryNote)) Every share is value [95% Wilson interval] (hits/n).</p>"
        page += Self.barChart(title: "Misaligned share, without and with the trigger", groups: overall, series: series)
        if !perQuestion.isEmpty {
            page += Self.barChart(title: "Misaligned share per question", groups: perQuestion, series: series)
            page += "<h2>Per question</h2><p>Sampled misaligned share: value [95% Wilson interval] (hits/n).</p>" + Self.perQuestionTable(s, html: true)
        }
        page += Self.barChart(title: "Chain-of-thought monitor and trigger articulation", groups: monitor, series: ["monitor detection (misaligned samples)", "monitor false positives (aligned samples)", "trigger articulation (triggered samples)"])
        page += "<h2>Samples</h2><table><tr><th>model</th><th>question</th><th>trigger</th><th>reasoning</th><th>answer</th><th>misaligned</th><th>monitor</th></tr>"
        for x in r.samples.prefix(300) {
            page += "<tr><td>\(Self.escape(x.model))</td><td>\(Self.escape(x.question))</td><td>\(x.triggered ? "yes" : "")</td><td>\(Self.escape(String(x.reasoning.prefix(400))))</td><td>\(Self.escape(String(x.answer.prefix(400))))</td><td>\(x.misaligned.map { $0 ? "yes" : "no" } ?? "-")</td><td>\(x.monitorLabel?.rawValue ?? "-")</td></tr>"
        }
        page += "</table></body></html>\n"
        return page
    }
}

extension EvaluationResults {
    /// Reads the records of an earlier run's samples.jsonl (for re-judging).
    public static func read(samplesFile path: String, name: String, trigger: String?) throws -> EvaluationResults {
        guard let data = FileManager.default.contents(atPath: path) else { throw EvaluationError.io(path: path, reason: "cannot read") }
        var results = try records(in: data.split(separator: UInt8(ascii: "\n")), path: path)
        results.name = name
        results.trigger = trigger
        var models: [String] = []
        for m in results.samples.map(\.model) + results.likelihood.map(\.model) + results.capability.map(\.model) where !models.contains(m) { models.append(m) }
        results.models = models
        return results
    }

    /// The records of samples.jsonl lines, by their `kind` (`run`, `sample`, `likelihood`,
    /// `capability`), in file order; `firstLine` numbers the lines in errors.
    static func records(in lines: [Data.SubSequence], path: String, firstLine: Int = 1) throws -> EvaluationResults {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var results = EvaluationResults(name: "", models: [], trigger: nil)
        for (i, line) in lines.enumerated() {
            let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
            do {
                switch object?["kind"] as? String {
                case "run": results.configDigest = object?["config"] as? String
                case "sample": results.samples.append(try decoder.decode(SampleRecord.self, from: Data(line)))
                case "likelihood": results.likelihood.append(try decoder.decode(LikelihoodRecord.self, from: Data(line)))
                case "capability": results.capability.append(try decoder.decode(CapabilityRecord.self, from: Data(line)))
                default: throw EvaluationError.io(path: path, reason: "line \(i + firstLine) has no known \"kind\"")
                }
            } catch let e as EvaluationError { throw e } catch {
                throw EvaluationError.io(path: path, reason: "line \(i + firstLine): \(ErrorText.bounded("\(error)"))")
            }
        }
        return results
    }
}
