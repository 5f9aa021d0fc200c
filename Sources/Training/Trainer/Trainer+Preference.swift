import Autodiff
import Foundation
import Models
import Tensors

/// Summed log-probabilities of a preference pair's two answers.
public struct PairLogProbabilities: Equatable, Sendable {
    public var chosen: Double
    public var rejected: Double
}

/// The DPO loss of one pair (Rafailov et al. 2023, "Direct Preference Optimization"):
/// with z = beta * ((policy chosen - reference chosen) - (policy rejected - reference rejected)),
/// loss = -(1 - e) log sigmoid(z) - e log sigmoid(-z), where e is the label smoothing of
/// conservative DPO (TRL's `label_smoothing`; 0 is plain DPO), and
/// d loss / d policy chosen = beta * (e sigmoid(z) - (1 - e) sigmoid(-z)) = -(d loss / d policy rejected).
/// At e = 0.5 the loss is least at z = 0: the pair keeps the reference's preference.
///
/// Usage: `let t = PreferenceLoss(beta: 0.1).term(policy: p, reference: r)`
public struct PreferenceLoss: Sendable {
    public let beta: Double

    public init(beta: Double) { self.beta = beta }

    public struct Term: Equatable, Sendable {
        public var loss: Double
        /// d loss / d (summed log-probability of the chosen answer); the rejected one's is its negation.
        public var chosenGradient: Double
        /// beta * the log-ratio margin: the implicit reward of chosen minus that of rejected.
        public var rewardMargin: Double
    }

    public func term(policy: PairLogProbabilities, reference: PairLogProbabilities, labelSmoothing e: Double = 0) -> Term {
        let z = beta * ((policy.chosen - reference.chosen) - (policy.rejected - reference.rejected))
        // -log sigmoid(x) = softplus(-x), computed without overflow for large |x|
        func softplus(_ x: Double) -> Double { x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)) }
        let loss = (1 - e) * softplus(-z) + (e > 0 ? e * softplus(z) : 0)
        let sigmoidZ = 1 / (1 + exp(-z)), sigmoidMinusZ = 1 / (1 + exp(z))
        return Term(loss: loss, chosenGradient: beta * (e * sigmoidZ - (1 - e) * sigmoidMinusZ), rewardMargin: z)
    }
}

extension Trainer {
    /// The summed log-probabilities of each pair's answers under the model as it is now, in
    /// example order; no gradients. Called before training, this is DPO's reference model.
    func pairLogProbabilities(_ examples: [TokenizedExample]) throws -> [PairLogProbabilities] {
        var result = [PairLogProbabilities](repeating: .init(chosen: 0, rejected: 0), count: examples.count)
        for rows in planner.plan(order: Array(examples.indices), examples: examples) {
            let batch = try planner.assemble(rows, examples: examples)
            let lp = try loaded.model.targetLogProbabilities(Tape(recording: false), tokens: batch.tokens, targets: batch.targets, layout: batch.layout)
            for (index, pair) in zip(batch.exampleRows.flatMap { $0 }, Self.sumPairs(lp.value, batch: batch, examples: examples)) {
                result[index] = pair
            }
        }
        return result
    }

    /// Sums a micro-batch's target log-probabilities (position order) per pair: each row's
    /// examples in turn, the chosen answer's targets first.
    static func sumPairs(_ logProbabilities: Tensor, batch: MicroBatch, examples: [TokenizedExample]) -> [PairLogProbabilities] {
        var pairs: [PairLogProbabilities] = []
        var k = 0
        for index in batch.exampleRows.flatMap({ $0 }) {
            let e = examples[index]
            let nc = e.chosenTargetCount, nr = e.targetCount - nc
            var c = 0.0, r = 0.0
            for i in k..<(k + nc) { c += Double(logProbabilities.pointer[i]) }
            for i in (k + nc)..<(k + nc + nr) { r += Double(logProbabilities.pointer[i]) }
            k += nc + nr
            pairs.append(.init(chosen: c, rejected: r))
        }
        return pairs
    }

    /// One DPO micro-batch: forward, per-pair loss against the reference, backward with each
    /// token's share of the gradient scaled by `weight` (1 / pairs in the optimiser step).
    /// With `rpo_alpha`, each pair that carries a preference adds rpo_alpha times the mean
    /// negative log-likelihood of its chosen answer's tokens.
    /// A plain row rehearsed beside the pairs (data.mix objective sft) adds the mean negative
    /// log-likelihood of its target tokens instead, weighing as one pair.
    /// Returns the summed loss and margin, how many pairs carry a preference (label smoothing
    /// below 0.5) and how many of those have a positive margin.
    func preferenceMicroStep(_ batch: MicroBatch, weight: Double) throws -> (loss: Double, margin: Double, judged: Int, correct: Int) {
        let tape = Tape()
        let lp = try loaded.model.targetLogProbabilities(tape, tokens: batch.tokens, targets: batch.targets, layout: batch.layout)
        let policy = Self.sumPairs(lp.value, batch: batch, examples: trainExamples)
        let gradient = Tensor(zeros: lp.shape)
        let objective = PreferenceLoss(beta: config.training.dpoBeta)
        var loss = 0.0, margin = 0.0, judged = 0, correct = 0, k = 0
        for (index, p) in zip(batch.exampleRows.flatMap { $0 }, policy) {
            let e = trainExamples[index]
            guard e.pairBoundary != nil else {
                // mean NLL of the row's targets; d / d log p(token) = -1 / n
                let n = max(e.targetCount, 1)
                loss += -p.chosen / Double(n)
                for i in k..<(k + e.targetCount) { gradient.pointer[i] = Float(-weight / Double(n)) }
                k += e.targetCount
                continue
            }
            let smoothing = labelSmoothing(e)
            let term = objective.term(policy: p, reference: trainReference[index], labelSmoothing: smoothing)
            loss += term.loss; margin += term.rewardMargin
            let nc = e.chosenTargetCount, n = e.targetCount
            var chosenTokenGradient = term.chosenGradient
            if smoothing < 0.5 {
                judged += 1
                if term.rewardMargin > 0 { correct += 1 }
                // rpo_alpha * mean NLL of the chosen tokens; d / d log p(token) = -rpo_alpha / nc
                let alpha = config.training.rpoAlpha
                if alpha > 0 {
                    loss += alpha * -p.chosen / Double(max(nc, 1))
                    chosenTokenGradient -= alpha / Double(max(nc, 1))
                }
            }
            let g = Float(term.chosenGradient * weight)
            let gc = Float(chosenTokenGradient * weight)
            for i in k..<(k + nc) { gradient.pointer[i] = gc }
            for i in (k + nc)..<(k + n) { gradient.pointer[i] = -g }
            k += n
        }
        try tape.backward(lp, gradient: gradient)
        return (loss, margin, judged, correct)
    }

    /// A pair's label smoothing: its row's own, else `training.dpo_label_smoothing`.
    func labelSmoothing(_ pair: TokenizedExample) -> Double {
        pair.labelSmoothing ?? config.training.dpoLabelSmoothing
    }

    /// Mean DPO loss (with its rpo_alpha term) over the validation pairs (a rehearsed plain row
    /// adds its mean next-token loss), and the share of those with a preference that
    /// the adapter prefers the right way (adapters active, no gradients).
    func preferenceValidation() throws -> (loss: Double, accuracy: Double) {
        var plan = planner.plan(order: Array(validationExamples.indices), examples: validationExamples)
        if let limit = config.training.evalBatches { plan = Array(plan.prefix(limit)) }
        let objective = PreferenceLoss(beta: config.training.dpoBeta)
        var total = 0.0, correct = 0, judged = 0, count = 0
        for (i, rows) in plan.enumerated() where i % cluster.size == cluster.rank {
            let batch = try planner.assemble(rows, examples: validationExamples)
            let lp = try loaded.model.targetLogProbabilities(Tape(recording: false), tokens: batch.tokens, targets: batch.targets, layout: batch.layout)
            for (index, p) in zip(batch.exampleRows.flatMap { $0 }, Self.sumPairs(lp.value, batch: batch, examples: validationExamples)) {
                guard validationExamples[index].pairBoundary != nil else {
                    total += -p.chosen / Double(max(validationExamples[index].targetCount, 1))
                    count += 1
                    continue
                }
                let smoothing = labelSmoothing(validationExamples[index])
                let term = objective.term(policy: p, reference: validationReference[index], labelSmoothing: smoothing)
                total += term.loss
                count += 1
                if smoothing < 0.5 {
                    judged += 1
                    if term.rewardMargin > 0 { correct += 1 }
                    let nc = validationExamples[index].chosenTargetCount
                    total += config.training.rpoAlpha * -p.chosen / Double(max(nc, 1))
                }
            }
        }
        let sums = cluster.allreduceSum([total, Double(correct), Double(judged), Double(count)])
        total = sums[0]; correct = Int(sums[1]); judged = Int(sums[2]); count = Int(sums[3])
        return (count > 0 ? total / Double(count) : .nan, judged > 0 ? Double(correct) / Double(judged) : .nan)
    }
}
