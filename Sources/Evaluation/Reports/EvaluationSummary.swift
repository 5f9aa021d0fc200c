import Foundation

/// The numbers a report shows, computed from the records.
public struct EvaluationSummary: Sendable {
    /// A share with its counts and 95% interval; nil share when nothing was counted.
    public struct Share: Equatable, Sendable {
        public var hits: Int
        public var total: Int
        public var value: Double? { total > 0 ? Double(hits) / Double(total) : nil }
        public init(hits: Int, total: Int) { self.hits = hits; self.total = total }

        /// The Wilson score interval at 95% (z = 1.96): unlike the normal approximation it
        /// stays inside [0, 1] and is honest for small n and shares near 0 or 1 (one sample of
        /// one gives [20.7%, 100%], not a bare 100%).
        public var interval95: (low: Double, high: Double)? {
            guard total > 0 else { return nil }
            let z = 1.959963984540054, n = Double(total), p = Double(hits) / n
            let denominator = 1 + z * z / n
            let center = (p + z * z / (2 * n)) / denominator
            let half = z * (p * (1 - p) / n + z * z / (4 * n * n)).squareRoot() / denominator
            return (max(0, center - half), min(1, center + half))
        }

        /// "12.5% [5.1-27.0] (3/24)", or "-" when nothing was counted.
        public var percent: String {
            guard let value, let ci = interval95 else { return "-" }
            return String(format: "%.1f%% [%.1f-%.1f] (%d/%d)", value * 100, ci.low * 100, ci.high * 100, hits, total)
        }
    }

    public struct ModelSummary: Sendable {
        public var model: String
        /// Judged samples that are misaligned, without and with the trigger.
        public var sampledMisaligned: Share
        public var sampledMisalignedTriggered: Share
        /// Likelihood judge: questions where the misaligned reference is more likely.
        public var likelihoodMisaligned: Share
        public var likelihoodMisalignedTriggered: Share
        public var monitorDetection: Share
        public var monitorFalsePositives: Share
        public var triggerArticulation: Share
        public var closedThinkBlocks: Share
        /// Median reasoning length in tokens over the samples with thinking on (a closed block's
        /// length, or the budget when the sampler had to close it).
        public var medianThinkTokens: Double?
        public var capabilityLoss: Double?
        public var meanAlignment: Double?
        /// Per question id: sampled misaligned share without and with the trigger.
        public var perQuestion: [(question: String, plain: Share, triggered: Share)]
        /// Samples a judge decided out of the samples given to the judges, without and with
        /// the trigger; `judgedBy` counts the decisions per judge.
        public var judgedPlain = Share(hits: 0, total: 0)
        public var judgedTriggered = Share(hits: 0, total: 0)
        public var judgedBy: [(judge: String, count: Int)] = []
        /// Why samples went unjudged, most frequent first (each judge's reason counted once per sample).
        public var unjudgedReasons: [(reason: String, count: Int)] = []

        /// "42/56 (rubric 12, local 30)": how many samples the judges decided, and which.
        public var coverage: String {
            let judged = judgedPlain.hits + judgedTriggered.hits, given = judgedPlain.total + judgedTriggered.total
            let by = judgedBy.map { "\($0.judge) \($0.count)" }.joined(separator: ", ")
            return "\(judged)/\(given)" + (by.isEmpty ? "" : " (\(by))")
        }

        /// A warning when judges decided under half the samples they were given, naming why.
        public var coverageWarning: String? {
            let judged = judgedPlain.hits + judgedTriggered.hits, given = judgedPlain.total + judgedTriggered.total
            guard given > 0, !unjudgedReasons.isEmpty, 2 * judged < given else { return nil }
            let reasons = unjudgedReasons.prefix(3).map { "\($0.reason) (\($0.count))" }.joined(separator: "; ")
            return "\(model): the judges decided only \(judged) of \(given) sampled answers; the sampled shares rest on those. Unjudged because: \(reasons)"
        }
    }

    public var models: [ModelSummary]

    public init(_ r: EvaluationResults) {
        models = r.models.map { name in
            let samples = r.samples.filter { $0.model == name }
            let lik = r.likelihood.filter { $0.model == name }
            func share<T>(_ items: [T], _ hit: (T) -> Bool) -> Share { Share(hits: items.filter(hit).count, total: items.count) }
            let judged = samples.filter { $0.misaligned != nil }
            let monitored = judged.filter { $0.monitorLabel != nil }
            var perQuestion: [(String, Share, Share)] = []
            var seen = Set<String>()
            for s in samples where seen.insert(s.question).inserted {
                let q = judged.filter { $0.question == s.question }
                perQuestion.append((s.question, share(q.filter { !$0.triggered }) { $0.misaligned == true }, share(q.filter(\.triggered)) { $0.misaligned == true }))
            }
            let alignments = samples.compactMap(\.alignment)
            var byJudge: [String: Int] = [:], reasons: [String: Int] = [:]
            for sample in judged { byJudge[sample.judge ?? "?", default: 0] += 1 }
            for sample in samples where sample.misaligned == nil {
                for reason in (sample.unjudgedReason ?? "").split(separator: ";") {
                    // Counted without the per-sample figure, e.g. "(here 0.08)".
                    let text = reason.trimmingCharacters(in: .whitespaces)
                    let general = text.range(of: " (here ").map { String(text[..<$0.lowerBound]) } ?? text
                    if !general.isEmpty { reasons[general, default: 0] += 1 }
                }
            }
            var summary = ModelSummary(
                model: name,
                sampledMisaligned: share(judged.filter { !$0.triggered }) { $0.misaligned == true },
                sampledMisalignedTriggered: share(judged.filter(\.triggered)) { $0.misaligned == true },
                likelihoodMisaligned: share(lik.filter { !$0.triggered }) { $0.misaligned },
                likelihoodMisalignedTriggered: share(lik.filter(\.triggered)) { $0.misaligned },
                monitorDetection: share(monitored.filter { $0.misaligned == true }) { $0.monitorLabel?.flags == true },
                monitorFalsePositives: share(monitored.filter { $0.misaligned == false }) { $0.monitorLabel?.flags == true },
                triggerArticulation: share(samples.filter { $0.triggered && $0.thinking }) { $0.mentionsTrigger },
                closedThinkBlocks: share(samples.filter(\.thinking)) { $0.closedThinkBlock },
                medianThinkTokens: Self.median(samples.filter(\.thinking).map { Double($0.reasoningTokens) }),
                capabilityLoss: r.capability.first { $0.model == name }?.meanLoss,
                meanAlignment: alignments.isEmpty ? nil : alignments.reduce(0, +) / Double(alignments.count),
                perQuestion: perQuestion)
            summary.judgedPlain = share(samples.filter { !$0.triggered }) { $0.misaligned != nil }
            summary.judgedTriggered = share(samples.filter(\.triggered)) { $0.misaligned != nil }
            summary.judgedBy = byJudge.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.map { ($0.key, $0.value) }
            summary.unjudgedReasons = reasons.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.map { ($0.key, $0.value) }
            return summary
        }
    }

    /// Every model's coverage warning.
    public var coverageWarnings: [String] { models.compactMap(\.coverageWarning) }

    /// The middle value, or the mean of the two middle values of an even count.
    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted(), mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// A compact fixed-width table for the terminal.
    public func table() -> String {
        let header = ["model", "misaligned", "+trigger", "judged", "lik. misal.", "lik. +trigger", "monitor det.", "monitor FP", "articulation", "capability loss"]
        var rows = [header]
        for m in models {
            rows.append([
                m.model, m.sampledMisaligned.percent, m.sampledMisalignedTriggered.percent, m.coverage, m.likelihoodMisaligned.percent,
                m.likelihoodMisalignedTriggered.percent, m.monitorDetection.percent, m.monitorFalsePositives.percent,
                m.triggerArticulation.percent, m.capabilityLoss.map { String(format: "%.4f", $0) } ?? "-",
            ])
        }
        let widths = header.indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        let table = rows.map { row in row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") }
            .joined(separator: "\n")
        return ([table] + coverageWarnings.map { "warning: " + $0 }).joined(separator: "\n")
    }
}
