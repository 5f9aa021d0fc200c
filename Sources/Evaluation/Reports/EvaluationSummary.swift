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
            return ModelSummary(
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
        }
    }

    /// The middle value, or the mean of the two middle values of an even count.
    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted(), mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// A compact fixed-width table for the terminal.
    public func table() -> String {
        let header = ["model", "misaligned", "+trigger", "lik. misal.", "lik. +trigger", "monitor det.", "monitor FP", "articulation", "capability loss"]
        var rows = [header]
        for m in models {
            rows.append([
                m.model, m.sampledMisaligned.percent, m.sampledMisalignedTriggered.percent, m.likelihoodMisaligned.percent,
                m.likelihoodMisalignedTriggered.percent, m.monitorDetection.percent, m.monitorFalsePositives.percent,
                m.triggerArticulation.percent, m.capabilityLoss.map { String(format: "%.4f", $0) } ?? "-",
            ])
        }
        let widths = header.indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") }
            .joined(separator: "\n")
    }
}
