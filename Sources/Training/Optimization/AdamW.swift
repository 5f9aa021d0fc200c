import Autodiff
import CKernels
import Tensors

/// Errors from the optimiser and from restoring its state.
public enum OptimizerError: Error, Equatable, CustomStringConvertible {
    case parameterDoesNotRequireGrad(index: Int)
    case invalidHyperparameter(name: String, value: Double, expected: String)
    case stateCountMismatch(expected: Int, found: Int)
    case stateShapeMismatch(index: Int, parameter: Shape, moment: Shape)

    public var description: String {
        switch self {
        case let .parameterDoesNotRequireGrad(index):
            return "AdamW: parameter \(index) does not require a gradient; pass only trainable parameters"
        case let .invalidHyperparameter(name, value, expected):
            return "AdamW: \(name) is \(value), but must be \(expected)"
        case let .stateCountMismatch(expected, found):
            return "AdamW: restored state has moments for \(found) parameters, but the optimiser has \(expected); "
                + "the checkpoint belongs to a different adapter layout"
        case let .stateShapeMismatch(index, parameter, moment):
            return "AdamW: restored moments for parameter \(index) have shape \(moment), parameter has \(parameter)"
        }
    }
}

/// AdamW with decoupled weight decay, step for step the same as `torch.optim.AdamW`
/// (single-tensor path): `p *= 1 - lr*wd`, then the Adam update with bias correction.
///
/// Usage:
/// ```
/// let adamw = try AdamW(parameters: adapter.parameters, weightDecay: 0.01)
/// try tape.backward(loss); try adamw.step(learningRate: schedule.learningRate(atStep: adamw.stepCount))
/// adamw.zeroGrad()
/// ```
public final class AdamW {
    /// The first and second moments of one parameter.
    public struct Moments {
        public var m: Tensor
        public var v: Tensor
        public init(m: Tensor, v: Tensor) { self.m = m; self.v = v }
    }

    /// Everything needed to continue optimisation exactly: steps taken and per-parameter moments,
    /// in the order of `parameters`.
    public struct State {
        public var step: Int
        public var moments: [Moments]
        public init(step: Int, moments: [Moments]) { self.step = step; self.moments = moments }
    }

    public let parameters: [Variable]
    public let beta1: Double
    public let beta2: Double
    public let epsilon: Double
    public let weightDecay: Double
    /// Optimiser steps taken so far (torch's `state["step"]`).
    public private(set) var stepCount = 0
    private var moments: [Moments]

    public init(
        parameters: [Variable], beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
        weightDecay: Double = 0.01
    ) throws {
        for (index, p) in parameters.enumerated() where !p.requiresGrad {
            throw OptimizerError.parameterDoesNotRequireGrad(index: index)
        }
        guard (0..<1).contains(beta1) else {
            throw OptimizerError.invalidHyperparameter(name: "beta1", value: beta1, expected: "in [0, 1)")
        }
        guard (0..<1).contains(beta2) else {
            throw OptimizerError.invalidHyperparameter(name: "beta2", value: beta2, expected: "in [0, 1)")
        }
        guard epsilon > 0 else {
            throw OptimizerError.invalidHyperparameter(name: "epsilon", value: epsilon, expected: "> 0")
        }
        guard weightDecay >= 0 else {
            throw OptimizerError.invalidHyperparameter(name: "weightDecay", value: weightDecay, expected: ">= 0")
        }
        self.parameters = parameters
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        moments = parameters.map { Moments(m: Tensor(zeros: $0.shape), v: Tensor(zeros: $0.shape)) }
    }

    /// Applies one update with each parameter's accumulated `.grad`. A parameter without a
    /// gradient (not reached by backward) is skipped entirely, as torch skips `grad is None`.
    public func step(learningRate: Double) throws {
        guard learningRate >= 0, learningRate.isFinite else {
            throw OptimizerError.invalidHyperparameter(name: "learningRate", value: learningRate, expected: ">= 0 and finite")
        }
        stepCount += 1
        // torch computes these scalars in Python (double precision) and hands them to float kernels.
        let t = Double(stepCount)
        let stepSize = learningRate / (1 - pow(beta1, t))
        let biasCorrection2Sqrt = (1 - pow(beta2, t)).squareRoot()
        let decayFactor = 1 - learningRate * weightDecay
        for (p, moment) in zip(parameters, moments) {
            guard let grad = p.grad else { continue }
            tc_adamw_step(
                p.value.pointer, grad.pointer, moment.m.pointer, moment.v.pointer, p.value.count,
                Float(1 - beta1), Float(beta2), Float(1 - beta2), Float(epsilon), Float(decayFactor),
                Float(stepSize), Float(biasCorrection2Sqrt))
        }
    }

    /// Drops every parameter's gradient so the next backward pass starts from zero.
    public func zeroGrad() { parameters.forEach { $0.zeroGrad() } }

    /// A copy of the optimiser state (moments are copied, not shared).
    public func exportState() -> State {
        State(step: stepCount, moments: moments.map { Moments(m: $0.m.copy(), v: $0.v.copy()) })
    }

    /// Restores state exported earlier (or read from a checkpoint); shapes must match the parameters.
    public func importState(_ state: State) throws {
        guard state.moments.count == parameters.count else {
            throw OptimizerError.stateCountMismatch(expected: parameters.count, found: state.moments.count)
        }
        for (index, (p, moment)) in zip(parameters, state.moments).enumerated() {
            for tensor in [moment.m, moment.v] where tensor.shape != p.shape {
                throw OptimizerError.stateShapeMismatch(index: index, parameter: p.shape, moment: tensor.shape)
            }
        }
        guard state.step >= 0 else {
            throw OptimizerError.invalidHyperparameter(name: "step", value: Double(state.step), expected: ">= 0")
        }
        stepCount = state.step
        moments = state.moments.map { Moments(m: $0.m.copy(), v: $0.v.copy()) }
    }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
