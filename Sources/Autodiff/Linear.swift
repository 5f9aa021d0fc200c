import Tensors

extension Tape {
    /// y = x W^T + b, the layout of torch.nn.Linear.
    ///
    /// Shapes: x [..., in], weight [out, in], bias [out] -> y [..., out].
    /// Usage: `let y = try tape.linear(x, w, bias: b)`
    public func linear(_ x: Variable, _ weight: Variable, bias: Variable? = nil) throws -> Variable {
        let inF = x.shape.last, rows = x.shape.rows
        guard weight.shape.rank == 2, weight.shape[1] == inF, x.shape.rank >= 1 else {
            throw TensorError.shapeMismatch(op: "linear", lhs: x.shape, rhs: weight.shape)
        }
        let outF = weight.shape[0]
        if let b = bias, b.shape != [outF] {
            throw TensorError.shapeMismatch(op: "linear bias", lhs: weight.shape, rhs: b.shape)
        }
        let y = Tensor(uninitialized: Shape(x.shape.dims.dropLast() + [outF]))
        // y starts as the broadcast bias (or zero) so one GEMM with beta = 1 adds the product.
        if let b = bias {
            for r in 0..<rows { (y.pointer + r * outF).update(from: b.value.pointer, count: outF) }
        }
        // y [rows, out] (+)= x [rows, in] . W^T
        GEMM.run(
            transposeA: false, transposeB: true, m: rows, n: outF, k: inF,
            a: x.value.pointer, lda: inF, b: weight.value.pointer, ldb: inF,
            beta: bias == nil ? 0 : 1, c: y.pointer, ldc: outF)
        return output(y, op: "linear", inputs: [x, weight, bias]) { dy in
            // dx [rows, in] += dy [rows, out] . W [out, in]
            if x.requiresGrad {
                GEMM.run(
                    transposeA: false, transposeB: false, m: rows, n: inF, k: outF,
                    a: dy.pointer, lda: outF, b: weight.value.pointer, ldb: inF, beta: 1,
                    c: x.gradBuffer().pointer, ldc: inF)
            }
            // dW [out, in] += dy^T [out, rows] . x [rows, in]
            if weight.requiresGrad {
                GEMM.run(
                    transposeA: true, transposeB: false, m: outF, n: inF, k: rows,
                    a: dy.pointer, lda: outF, b: x.value.pointer, ldb: inF, beta: 1,
                    c: weight.gradBuffer().pointer, ldc: inF)
            }
            // db [out] += column sums of dy
            if let b = bias, b.requiresGrad {
                let db = b.gradBuffer().pointer
                for r in 0..<rows {
                    let dyr = dy.pointer + r * outF
                    for j in 0..<outF { db[j] += dyr[j] }
                }
            }
        }
    }

    /// Matrix product of rank-2 variables: a [m, k] . b [k, n], or b^T when b is [n, k].
    ///
    /// Usage: `let c = try tape.matmul(a, b, transposeB: true)`
    public func matmul(_ a: Variable, _ b: Variable, transposeB: Bool = false) throws -> Variable {
        let c = try a.value.matmul(b.value, transposeOther: transposeB)
        let m = a.shape[0], k = a.shape[1], n = c.shape[1]
        return output(c, op: "matmul", inputs: [a, b]) { dc in
            // da [m, k] += dc [m, n] . op(b)^T
            if a.requiresGrad {
                GEMM.run(
                    transposeA: false, transposeB: !transposeB, m: m, n: k, k: n,
                    a: dc.pointer, lda: n, b: b.value.pointer, ldb: b.shape[1], beta: 1,
                    c: a.gradBuffer().pointer, ldc: k)
            }
            if b.requiresGrad {
                if transposeB {
                    // db [n, k] += dc^T [n, m] . a [m, k]
                    GEMM.run(
                        transposeA: true, transposeB: false, m: n, n: k, k: m,
                        a: dc.pointer, lda: n, b: a.value.pointer, ldb: k, beta: 1,
                        c: b.gradBuffer().pointer, ldc: k)
                } else {
                    // db [k, n] += a^T [k, m] . dc [m, n]
                    GEMM.run(
                        transposeA: true, transposeB: false, m: k, n: n, k: m,
                        a: a.value.pointer, lda: k, b: dc.pointer, ldb: n, beta: 1,
                        c: b.gradBuffer().pointer, ldc: n)
                }
            }
        }
    }
}
