/// The learning rate for each optimiser step: linear warmup from 0, then constant, linear or
/// cosine decay to `minLRRatio * baseLR`.
///
/// The factors are those of Hugging Face transformers' `get_constant_schedule_with_warmup`,
/// `get_linear_schedule_with_warmup` and `get_cosine_with_min_lr_schedule_with_warmup`
/// (num_cycles 0.5, min_lr_rate = minLRRatio), evaluated, as `LambdaLR` does, at the number of
/// steps already taken: the first update uses `learningRate(atStep: 0)`. Two deliberate
/// extensions: linear decay ends at `minLRRatio` instead of 0 (identical when it is 0), and past
/// `totalSteps` decay stays at its end value instead of cosine rising again.
///
/// Usage: `let lr = LearningRateSchedule(kind: .cosine, baseLR: 2e-4, warmupSteps: 10, totalSteps: 100).learningRate(atStep: 5)`
public struct LearningRateSchedule: Equatable, Sendable {
    public let kind: LRSchedulerName
    public let baseLR: Double
    public let warmupSteps: Int
    public let totalSteps: Int
    public let minLRRatio: Double

    public init(kind: LRSchedulerName, baseLR: Double, warmupSteps: Int, totalSteps: Int, minLRRatio: Double = 0) {
        self.kind = kind
        self.baseLR = baseLR
        self.warmupSteps = max(0, warmupSteps)
        self.totalSteps = max(0, totalSteps)
        self.minLRRatio = minLRRatio
    }

    /// The learning rate for the update that follows `step` completed updates.
    public func learningRate(atStep step: Int) -> Double { baseLR * factor(atStep: step) }

    /// The multiplier of `baseLR` (transformers' `lr_lambda`).
    public func factor(atStep step: Int) -> Double {
        if step < warmupSteps { return Double(step) / Double(max(1, warmupSteps)) }
        let decaySteps = Double(max(1, totalSteps - warmupSteps))
        let progress = min(1, Double(step - warmupSteps) / decaySteps)
        switch kind {
        case .constant:
            return 1
        case .linear:
            let remaining = max(0, Double(totalSteps - step) / decaySteps)
            return minLRRatio + (1 - minLRRatio) * min(1, remaining)
        case .cosine:
            let cosine = 0.5 * (1 + cos(Double.pi * 0.5 * 2 * progress))
            return max(0, cosine * (1 - minLRRatio) + minLRRatio)
        }
    }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
