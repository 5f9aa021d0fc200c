import COpenBLAS
import Foundation

/// Matrix products through OpenBLAS's cblas_sgemm.
public enum GEMM {
    /// C = alpha * op(A) * op(B) + beta * C on raw row-major buffers, where op(A) is M x K and
    /// op(B) is K x N. Leading dimensions are the row strides of the stored matrices.
    public static func run(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        _ = openBLASThreadsConfigured
        if k == 0 {
            // BLAS leaves C untouched only for beta == 1; make the empty product explicit.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            return
        }
        if m == 1 && !transposeA {
            // A single row is a matrix-vector product; sgemm would pack all of B first.
            // y [n] = op(B) x: B stored [n, k] (transposed) or [k, n].
            func gemv(_ lo: Int, _ count: Int) {
                cblas_sgemv(
                    CblasRowMajor, transposeB ? CblasNoTrans : CblasTrans, Int32(transposeB ? count : k),
                    Int32(transposeB ? k : count), alpha, b + (transposeB ? lo * ldb : lo), Int32(ldb), a, 1, beta, c + lo, 1)
            }
            if threading == .threadPool && n * k >= 1 << 16 {
                ThreadPool.shared.parallelFor(n, minChunk: 64) { r in gemv(r.lowerBound, r.count) }
            } else {
                gemv(0, n)
            }
            return
        }
        if threading == .threadPool && m * n * k >= 1 << 18 && max(m, n) >= 32 {
            // Split the larger output dimension across the pool; each part is a single-threaded sgemm.
            let splitRows = m >= n
            ThreadPool.shared.parallelFor(splitRows ? m : n, minChunk: 16) { r in
                let lo = r.lowerBound
                if splitRows {
                    cblas_sgemm(
                        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(r.count), Int32(n), Int32(k), alpha, a + (transposeA ? lo : lo * lda), Int32(lda),
                        b, Int32(ldb), beta, c + lo * ldc, Int32(ldc))
                } else {
                    cblas_sgemm(
                        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(r.count), Int32(k), alpha, a, Int32(lda),
                        b + (transposeB ? lo * ldb : lo), Int32(ldb), beta, c + lo, Int32(ldc))
                }
            }
            return
        }
        // A threaded sgemm starts OpenBLAS's stopped server threads from this thread (see
        // setOpenblasThreads), so it must have the mode they are to copy.
        if threading == .openBLAS { SubnormalFlushing.setForCurrentThread(true) }
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha, a,
            Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Who runs sgemm in parallel.
    public enum Threading: Sendable {
        /// OpenBLAS's own threads (as many as `ThreadPool.shared` has), for a process that does little else.
        case openBLAS
        /// OpenBLAS single-threaded, products split by rows or columns over `ThreadPool` (the
        /// default): the pool's helpers and OpenBLAS's threads would otherwise both spin-wait
        /// for work on the same cores. Measured on the 2-core machine: prefill 1x128 ~400
        /// tokens/s against ~320 with OpenBLAS threads, decoding unchanged (docs/benchmarks.md).
        case threadPool
    }

    /// The current threading; setting it sets OpenBLAS's thread count.
    ///
    /// Usage: `GEMM.threading = .openBLAS`
    nonisolated(unsafe) public static var threading: Threading = .threadPool {
        didSet {
            setOpenblasThreads(threading == .openBLAS ? Int32(ThreadPool.shared.workers) : 1)
        }
    }

    /// OpenBLAS starts with one thread per core; the default threading wants one.
    private static let openBLASThreadsConfigured: Void = {
        if threading == .threadPool { setOpenblasThreads(1) }
    }()
}

extension Tensor {
    /// The matrix product op(self) x op(other) of two rank-2 tensors.
    ///
    /// Usage: `let y = try x.matmul(w, transposeOther: true)  // [n, in] x [out, in]^T`
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false)
        throws -> Tensor
    {
        guard shape.rank == 2 else {
            throw TensorError.invalidShape(op: "matmul", shape: shape, expected: "rank 2")
        }
        guard other.shape.rank == 2 else {
            throw TensorError.invalidShape(op: "matmul", shape: other.shape, expected: "rank 2")
        }
        let (m, k) = transposeSelf ? (shape[1], shape[0]) : (shape[0], shape[1])
        let (k2, n) = transposeOther ? (other.shape[1], other.shape[0]) : (other.shape[0], other.shape[1])
        guard k == k2 else {
            throw TensorError.shapeMismatch(op: "matmul", lhs: shape, rhs: other.shape)
        }
        let out = Tensor(uninitialized: [m, n])
        GEMM.run(
            transposeA: transposeSelf, transposeB: transposeOther, m: m, n: n, k: k,
            a: pointer, lda: shape[1], b: other.pointer, ldb: other.shape[1], c: out.pointer, ldc: n)
        return out
    }

    /// Batched matrix product of rank-3 tensors: out[i] = op(self[i]) x op(other[i]).
    ///
    /// Usage: `let s = try q.batchedMatmul(k, transposeOther: true)  // [b, t, d] x [b, t, d]^T`
    public func batchedMatmul(
        _ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false
    ) throws -> Tensor {
        guard shape.rank == 3 else {
            throw TensorError.invalidShape(op: "batchedMatmul", shape: shape, expected: "rank 3")
        }
        guard other.shape.rank == 3 else {
            throw TensorError.invalidShape(op: "batchedMatmul", shape: other.shape, expected: "rank 3")
        }
        let batch = shape[0]
        let (m, k) = transposeSelf ? (shape[2], shape[1]) : (shape[1], shape[2])
        let (k2, n) = transposeOther ? (other.shape[2], other.shape[1]) : (other.shape[1], other.shape[2])
        guard other.shape[0] == batch, k == k2 else {
            throw TensorError.shapeMismatch(op: "batchedMatmul", lhs: shape, rhs: other.shape)
        }
        let out = Tensor(uninitialized: [batch, m, n])
        let aStride = shape[1] * shape[2], bStride = other.shape[1] * other.shape[2]
        for i in 0..<batch {
            GEMM.run(
                transposeA: transposeSelf, transposeB: transposeOther, m: m, n: n, k: k,
                a: pointer + i * aStride, lda: shape[2], b: other.pointer + i * bStride,
                ldb: other.shape[2], c: out.pointer + i * m * n, ldc: n)
        }
        return out
    }
}

extension GEMM {
    /// One disagreement found by `verify`.
    public struct Mismatch: Error, CustomStringConvertible {
        public let m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool
        public let maxError: Float
        public var description: String {
            "sgemm \(m)x\(n)x\(k) transA=\(transposeA) transB=\(transposeB): max error \(maxError)"
        }
    }

    /// Row-major C = alpha op(A) op(B) + beta C computed with plain loops in Double; the
    /// reference `verify` checks OpenBLAS against.
    public static func reference(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: [Float], lda: Int, b: [Float], ldb: Int, beta: Float, c: inout [Float], ldc: Int
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var acc = 0.0
                for p in 0..<k {
                    let av = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    acc += Double(av) * Double(bv)
                }
                c[i * ldc + j] = Float(Double(alpha) * acc + Double(beta) * Double(c[i * ldc + j]))
            }
        }
    }

    /// Checks the sgemm kernels OpenBLAS is running against `reference` on odd shapes, every
    /// transpose combination, non-trivial alpha/beta and padded leading dimensions. Returns the
    /// number of products checked; throws the first mismatch.
    @discardableResult
    public static func verify(tolerance: Float = 1e-4) throws -> Int {
        let shapes = [(1, 1, 1), (3, 5, 7), (17, 13, 9), (33, 65, 31), (70, 3, 129), (127, 96, 80)]
        var state: UInt64 = 0x1234_5678_9abc_def1
        func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
        }
        var checked = 0
        for (m, n, k) in shapes {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    let (ar, ac) = transposeA ? (k, m) : (m, k)
                    let (br, bc) = transposeB ? (n, k) : (k, n)
                    let lda = ac + 3, ldb = bc + 1, ldc = n + 2
                    let a = (0..<(ar * lda)).map { _ in next() }
                    let b = (0..<(br * ldb)).map { _ in next() }
                    let c0 = (0..<(m * ldc)).map { _ in next() }
                    var expected = c0, actual = c0
                    reference(
                        transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                        alpha: 0.75, a: a, lda: lda, b: b, ldb: ldb, beta: -0.5, c: &expected, ldc: ldc)
                    a.withUnsafeBufferPointer { ap in
                        b.withUnsafeBufferPointer { bp in
                            actual.withUnsafeMutableBufferPointer { cp in
                                run(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                    alpha: 0.75, a: ap.baseAddress!, lda: lda, b: bp.baseAddress!,
                                    ldb: ldb, beta: -0.5, c: cp.baseAddress!, ldc: ldc)
                            }
                        }
                    }
                    var worst: Float = 0
                    for i in 0..<m {
                        for j in 0..<n {
                            let e = expected[i * ldc + j], g = actual[i * ldc + j]
                            worst = Swift.max(worst, abs(e - g) / Swift.max(1, abs(e)))
                        }
                        // padding columns beyond n must be left untouched
                        for j in n..<ldc where actual[i * ldc + j] != c0[i * ldc + j] {
                            worst = .infinity
                        }
                    }
                    if !(worst <= tolerance) {
                        throw Mismatch(m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB, maxError: worst)
                    }
                    checked += 1
                }
            }
        }
        return checked
    }
}

/// Number of threads OpenBLAS uses for one product.
public func openblasThreads() -> Int32 { openblas_get_num_threads() }

/// Sets the number of threads OpenBLAS uses for one product.
///
/// OpenBLAS starts its server threads again here when they were stopped (after
/// `SubnormalFlushing.enableForProcess()` or a fork), and they copy the calling thread's
/// floating-point mode, so the calling thread gets subnormal flushing first: `serve` made its
/// first product on a dispatch thread without it, and OpenBLAS's threads then never flushed.
public func setOpenblasThreads(_ n: Int32) {
    SubnormalFlushing.setForCurrentThread(true)
    openblas_set_num_threads(n)
}
