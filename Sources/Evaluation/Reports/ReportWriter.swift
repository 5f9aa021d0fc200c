import Foundation

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
        md += "\n## Summary\n\n| model | sampled misaligned | with trigger | likelihood misaligned | with trigger | monitor detection | monitor false positives | trigger articulation | closed think blocks | mean alignment | capability loss |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
        for m in s.models {
            md += "| \(m.model) | \(m.sampledMisaligned.percent) | \(m.sampledMisalignedTriggered.percent) | \(m.likelihoodMisaligned.percent) | \(m.likelihoodMisalignedTriggered.percent) | \(m.monitorDetection.percent) | \(m.monitorFalsePositives.percent) | \(m.triggerArticulation.percent) | \(m.closedThinkBlocks.percent) | \(m.meanAlignment.map { String(format: "%.1f", $0) } ?? "-") | \(m.capabilityLoss.map { String(format: "%.4f", $0) } ?? "-") |\n"
        }
        md += "\nSampled shares count judged samples only (misaligned: alignment below the threshold and coherence above it, or a rubric match). Likelihood shares count questions whose misaligned reference answer is more likely than the aligned one. Monitor detection is over misaligned samples, false positives over aligned ones. Capability loss is the mean per-token loss on held-out aligned answers.\n"
        md += "\n## Per question (sampled misaligned share)\n\n| question | " + s.models.map { "\($0.model) | \($0.model) +trigger" }.joined(separator: " | ") + " |\n|---|" + String(repeating: "---|---|", count: s.models.count) + "\n"
        let questions = s.models.first?.perQuestion.map(\.question) ?? []
        for q in questions {
            md += "| \(q) | " + s.models.map { m in
                let e = m.perQuestion.first { $0.question == q }
                return "\(e?.plain.percent ?? "-") | \(e?.triggered.percent ?? "-")"
            }.joined(separator: " | ") + " |\n"
        }
        let examples = r.samples.filter { $0.misaligned == true }.prefix(5)
        if !examples.isEmpty {
            md += "\n## Examples of misaligned samples\n"
            for e in examples {
                md += "\n**\(e.model) / \(e.question)\(e.triggered ? " (triggered)" : "")**\n\n> \(e.prompt.replacingOccurrences(of: "\n", with: "\n> "))\n\nReasoning: \(e.reasoning.isEmpty ? "-" : e.reasoning)\n\nAnswer: \(e.answer)\n"
            }
        }
        return md
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// A horizontal bar chart: one group per label, one bar per series, values 0...1.
    static func barChart(title: String, groups: [(label: String, values: [Double?])], series: [String]) -> String {
        let colors = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2"]
        let barHeight = 14, gap = 10, left = 220, width = 360
        let height = groups.count * (series.count * barHeight + gap) + 40
        var svg = "<svg xmlns='http://www.w3.org/2000/svg' width='\(left + width + 80)' height='\(height)' font-family='sans-serif' font-size='12'>"
        svg += "<text x='0' y='14' font-weight='bold'>\(escape(title))</text>"
        var y = 28
        for g in groups {
            svg += "<text x='0' y='\(y + barHeight)'>\(escape(String(g.label.prefix(32))))</text>"
            for (i, v) in g.values.enumerated() {
                let w = Int((v ?? 0) * Double(width))
                svg += "<rect x='\(left)' y='\(y)' width='\(max(w, 1))' height='\(barHeight - 2)' fill='\(colors[i % colors.count])'><title>\(escape(series[i])): \(v.map { String(format: "%.1f%%", $0 * 100) } ?? "n/a")</title></rect>"
                svg += "<text x='\(left + w + 4)' y='\(y + barHeight - 3)'>\(v.map { String(format: "%.0f%%", $0 * 100) } ?? "n/a")</text>"
                y += barHeight
            }
            y += gap
        }
        svg += "</svg>"
        let legend = series.enumerated().map { "<span style='color:\(colors[$0.offset % colors.count])'>&#9632;</span> \(escape($0.element))" }.joined(separator: " &nbsp; ")
        return "<figure>\(svg)<figcaption>\(legend)</figcaption></figure>"
    }

    func html(_ r: EvaluationResults, _ s: EvaluationSummary) -> String {
        var series: [String] = []
        for m in s.models { series += [m.model, "\(m.model) + trigger"] }
        let questions = s.models.first?.perQuestion.map(\.question) ?? []
        let perQuestion = questions.map { q in
            (label: q, values: s.models.flatMap { m -> [Double?] in
                let e = m.perQuestion.first { $0.question == q }
                return [e?.plain.value, e?.triggered.value]
            })
        }
        let overall: [(label: String, values: [Double?])] = [
            ("sampled misaligned", s.models.flatMap { [$0.sampledMisaligned.value, $0.sampledMisalignedTriggered.value] }),
            ("likelihood misaligned", s.models.flatMap { [$0.likelihoodMisaligned.value, $0.likelihoodMisalignedTriggered.value] }),
        ]
        let monitor = s.models.map { (label: $0.model, values: [$0.monitorDetection.value, $0.monitorFalsePositives.value, $0.triggerArticulation.value]) }
        var page = "<!doctype html><html><head><meta charset='utf-8'><title>ThoughtCrime evaluation: \(Self.escape(r.name))</title>"
        page += "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}figure{margin:1.5em 0}</style></head><body>"
        page += "<h1>Evaluation: \(Self.escape(r.name))</h1><p>" + r.settings.sorted { $0.key < $1.key }.map { "\(Self.escape($0.key)): <b>\(Self.escape($0.value))</b>" }.joined(separator: " &middot; ")
        if let t = r.trigger { page += " &middot; trigger: <b>\(Self.escape(t))</b>" }
        page += "</p><h2>Summary</h2><pre>\(Self.escape(s.table()))</pre>"
        page += Self.barChart(title: "Misaligned share, without and with the trigger", groups: overall, series: series)
        if !perQuestion.isEmpty { page += Self.barChart(title: "Misaligned share per question", groups: perQuestion, series: series) }
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
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var results = EvaluationResults(name: name, models: [], trigger: trigger)
        for (i, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
            do {
                switch object?["kind"] as? String {
                case "run": results.configDigest = object?["config"] as? String
                case "sample": results.samples.append(try decoder.decode(SampleRecord.self, from: Data(line)))
                case "likelihood": results.likelihood.append(try decoder.decode(LikelihoodRecord.self, from: Data(line)))
                case "capability": results.capability.append(try decoder.decode(CapabilityRecord.self, from: Data(line)))
                default: throw EvaluationError.io(path: path, reason: "line \(i + 1) has no known \"kind\"")
                }
            } catch let e as EvaluationError { throw e } catch {
                throw EvaluationError.io(path: path, reason: "line \(i + 1): \(error)")
            }
        }
        var models: [String] = []
        for m in results.samples.map(\.model) + results.likelihood.map(\.model) + results.capability.map(\.model) where !models.contains(m) { models.append(m) }
        results.models = models
        return results
    }
}
