import CKernels

/// Element counts below this run on one thread; above it the C kernels are split by ThreadPool.
let parallelElementThreshold = 1 << 16

extension Tensor {
    private func requireSameShape(_ other: Tensor, _ op: String) throws {
        guard shape == other.shape else {
            throw TensorError.shapeMismatch(op: op, lhs: shape, rhs: other.shape)
        }
    }

    private static func chunked(_ n: Int, _ body: (Int, Int) -> Void) {
        ThreadPool.shared.parallelFor(n, minChunk: parallelElementThreshold) { r in
            body(r.lowerBound, r.count)
        }
    }

    /// Elementwise sum; shapes must match exactly (no broadcasting).
    public func adding(_ other: Tensor) throws -> Tensor {
        try requireSameShape(other, "add")
        let out = Tensor(uninitialized: shape)
        let a = pointer, b = other.pointer, o = out.pointer
        Tensor.chunked(count) { lo, n in tc_add(a + lo, b + lo, o + lo, n) }
        return out
    }

    /// Elementwise product; shapes must match exactly (no broadcasting).
    public func multiplying(_ other: Tensor) throws -> Tensor {
        try requireSameShape(other, "mul")
        let out = Tensor(uninitialized: shape)
        let a = pointer, b = other.pointer, o = out.pointer
        Tensor.chunked(count) { lo, n in tc_mul(a + lo, b + lo, o + lo, n) }
        return out
    }

    public func scaled(by s: Float) -> Tensor {
        let out = Tensor(uninitialized: shape)
        let a = pointer, o = out.pointer
        Tensor.chunked(count) { lo, n in tc_scale(a + lo, s, o + lo, n) }
        return out
    }

    /// self += alpha * other, in place.
    public func addScaled(_ other: Tensor, alpha: Float = 1) throws {
        try requireSameShape(other, "axpy")
        let x = other.pointer, y = pointer
        Tensor.chunked(count) { lo, n in tc_axpy(alpha, x + lo, y + lo, n) }
    }

    /// Sum of all elements, accumulated in Double.
    public func sum() -> Double { tc_sum(pointer, count) }

    /// Largest element (-infinity for an empty tensor).
    public func maximum() -> Float { tc_max(pointer, count) }

    /// Sum of elementwise products, accumulated in Double.
    public func dot(_ other: Tensor) throws -> Double {
        try requireSameShape(other, "dot")
        return tc_dot(pointer, other.pointer, count)
    }

    /// Softmax over the last axis.
    public func softmax() -> Tensor {
        let out = Tensor(uninitialized: shape)
        let cols = shape.last, x = pointer, o = out.pointer
        ThreadPool.shared.parallelFor(shape.rows, minChunk: max(1, 4096 / max(cols, 1))) { r in
            tc_softmax_rows(x + r.lowerBound * cols, o + r.lowerBound * cols, r.count, cols)
        }
        return out
    }
}
