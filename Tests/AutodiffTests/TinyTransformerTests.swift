import Autodiff
import Tensors
import XCTest

/// A two-block decoder-only transformer built from the autodiff ops (embedding, RMSNorm,
/// rotary, grouped-query attention over packed sequences, SwiGLU MLP, tied-head
/// cross-entropy) must learn a small next-token task: its loss falls under Adam.
final class TinyTransformerTests: XCTestCase {
    struct Block {
        let attnNorm, q, k, v, o, mlpNorm, gate, up, down: Variable
    }

    let vocab = 12, d = 16, heads = 4, kvHeads = 2, headDim = 4, ffn = 32

    func makeParameters(_ rng: inout TestRNG) -> (embed: Variable, blocks: [Block], finalNorm: Variable) {
        func ones(_ n: Int) -> Variable { Variable(Tensor(shape: [n], repeating: 1), requiresGrad: true) }
        let blocks = (0..<2).map { _ in
            Block(
                attnNorm: ones(d), q: rng.variable([heads * headDim, d], scale: 0.3),
                k: rng.variable([kvHeads * headDim, d], scale: 0.3),
                v: rng.variable([kvHeads * headDim, d], scale: 0.3),
                o: rng.variable([d, heads * headDim], scale: 0.3), mlpNorm: ones(d),
                gate: rng.variable([ffn, d], scale: 0.3), up: rng.variable([ffn, d], scale: 0.3),
                down: rng.variable([d, ffn], scale: 0.2))
        }
        return (rng.variable([vocab, d], scale: 0.5), blocks, ones(d))
    }

    func testLossFallsOverAFewAdamSteps() throws {
        var rng = TestRNG(seed: 5)
        let (embed, blocks, finalNorm) = makeParameters(&rng)
        // Two rows; row 0 packs two sequences. Each sequence counts up modulo the vocabulary
        // from its own start, so the next token is predictable from the current one.
        let layout = try PackedSequences(seqLen: 8, rows: [[5, 3], [8]])
        let tokens: [Int32] = [1, 2, 3, 4, 5, 7, 8, 9, 3, 4, 5, 6, 7, 8, 9, 10]
        var targets = [Int32](repeating: Tape.ignoreIndex, count: tokens.count)
        // a token's target is the next token of the same sequence; sequence ends have none
        for i in 0..<(tokens.count - 1) where layout.positions[i + 1] != 0 { targets[i] = tokens[i + 1] }

        var params = [embed, finalNorm]
        for b in blocks { params += [b.attnNorm, b.q, b.k, b.v, b.o, b.mlpNorm, b.gate, b.up, b.down] }
        var m = params.map { Tensor(zeros: $0.shape) }, s = params.map { Tensor(zeros: $0.shape) }

        func step(_ t: Int) throws -> Float {
            let tape = Tape()
            var h = try tape.embedding(tokens, table: embed)
            for b in blocks {
                let x = try tape.rmsNorm(h, weight: b.attnNorm, eps: 1e-5)
                let q = try tape.rotary(try tape.linear(x, b.q), positions: layout.positions, headDim: headDim, base: 10_000, convention: .halfRotation)
                let k = try tape.rotary(try tape.linear(x, b.k), positions: layout.positions, headDim: headDim, base: 10_000, convention: .halfRotation)
                let v = try tape.linear(x, b.v)
                let a = try tape.attention(q, k, v, heads: heads, kvHeads: kvHeads, headDim: headDim, layout: layout)
                h = try tape.add(h, try tape.linear(a, b.o))
                let y = try tape.rmsNorm(h, weight: b.mlpNorm, eps: 1e-5)
                let mlp = try tape.swiglu(gate: try tape.linear(y, b.gate), up: try tape.linear(y, b.up))
                h = try tape.add(h, try tape.linear(try tape.dropout(mlp, probability: 0.05, seed: UInt64(t)), b.down))
            }
            let ce = try tape.crossEntropy(
                hidden: try tape.rmsNorm(h, weight: finalNorm, eps: 1e-5), head: embed, targets: targets, vocabChunk: 5)
            for p in params { p.zeroGrad() }
            try tape.backward(ce.loss)
            // Adam, lr 1e-2
            let (b1, b2, lr): (Float, Float, Float) = (0.9, 0.999, 1e-2)
            for (i, p) in params.enumerated() {
                guard let g = p.grad else { continue }
                for j in 0..<p.value.count {
                    m[i][flat: j] = b1 * m[i][flat: j] + (1 - b1) * g[flat: j]
                    s[i][flat: j] = b2 * s[i][flat: j] + (1 - b2) * g[flat: j] * g[flat: j]
                    let mh = m[i][flat: j] / (1 - pow(b1, Float(t + 1)))
                    let sh = s[i][flat: j] / (1 - pow(b2, Float(t + 1)))
                    p.value[flat: j] -= lr * mh / (sh.squareRoot() + 1e-8)
                }
            }
            return ce.loss.value[flat: 0]
        }

        let first = try step(0)
        var last = first
        for t in 1..<40 { last = try step(t) }
        XCTAssertFalse(last.isNaN)
        XCTAssertLessThan(last, first * 0.3, "loss \(first) -> \(last)")
        print("tiny transformer loss \(first) -> \(last)")
    }
}
