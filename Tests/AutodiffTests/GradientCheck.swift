import Autodiff
import Tensors
import XCTest

/// Deterministic pseudo-random numbers for test fixtures.
struct TestRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> Float {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(state >> 40) / Float(1 << 24) * 2 - 1  // uniform in [-1, 1)
    }
    mutating func tensor(_ shape: Shape, scale: Float = 1) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t[flat: i] = next() * scale }
        return t
    }
    mutating func variable(_ shape: Shape, scale: Float = 1, requiresGrad: Bool = true) -> Variable {
        Variable(tensor(shape, scale: scale), requiresGrad: requiresGrad)
    }
}

/// Checks analytic gradients against central finite differences.
///
/// The op's output is reduced to a scalar with fixed random weights R (loss = sum(out * R),
/// accumulated in Double) so every output element's gradient path is exercised. Each input
/// element x is perturbed by +-eps and the numeric gradient (L(x+eps) - L(x-eps)) / 2eps is
/// compared with the analytic one under |analytic - numeric| <= atol + rtol * |numeric|.
/// Stated tolerances: eps = 1e-2, atol = 2e-3, rtol = 2e-2 (Float32 forward, smooth ops).
func checkGradients(
    _ inputs: [Variable], eps: Float = 1e-2, atol: Float = 2e-3, rtol: Float = 2e-2,
    maxElementsPerInput: Int = 48, file: StaticString = #filePath, line: UInt = #line,
    _ build: (Tape) throws -> Variable
) throws {
    var rng = TestRNG(seed: 77)
    let probe = try build(Tape())
    let weights = rng.tensor(probe.shape)

    func lossValue() throws -> Double {
        let out = try build(Tape())
        return try out.value.dot(weights)
    }

    // Analytic gradients
    for v in inputs { v.zeroGrad() }
    let tape = Tape()
    let out = try build(tape)
    let r = Variable(weights)
    let loss = try tape.sum(try tape.mul(out, r))
    try tape.backward(loss)

    for (index, v) in inputs.enumerated() where v.requiresGrad {
        let analytic = v.grad ?? Tensor(zeros: v.shape)
        let n = v.value.count
        let step = max(1, n / maxElementsPerInput)
        for i in stride(from: 0, to: n, by: step) {
            let saved = v.value[flat: i]
            v.value[flat: i] = saved + eps
            let plus = try lossValue()
            v.value[flat: i] = saved - eps
            let minus = try lossValue()
            v.value[flat: i] = saved
            let numeric = Float((plus - minus) / Double(2 * eps))
            let a = analytic[flat: i]
            XCTAssertLessThanOrEqual(
                abs(a - numeric), atol + rtol * abs(numeric),
                "input \(index) element \(i): analytic \(a) vs numeric \(numeric)", file: file, line: line)
        }
    }
}
