/// A weight matrix W [rows = out features, columns = in features] that is multiplied but never
/// trained: the frozen base weights of a model. Implementations may keep W in a compressed form
/// (quantised blocks) and expand it on the fly.
public protocol FrozenMatrix: AnyObject {
    var rows: Int { get }
    var columns: Int { get }
    /// Bytes this matrix occupies in memory.
    var byteCount: Int { get }
    /// y [n, rows] = x [n, columns] . W^T, or y += ... when `accumulate`.
    func multiply(_ x: UnsafePointer<Float>, count n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool)
    /// dx [n, columns] += dy [n, rows] . W, the input gradient of `multiply`.
    func multiplyTransposed(_ dy: UnsafePointer<Float>, count n: Int, accumulateInto dx: UnsafeMutablePointer<Float>)
    /// Row r of W, expanded to Float32 (for embedding lookups and exports).
    func row(_ r: Int, into destination: UnsafeMutablePointer<Float>)
}

/// A frozen matrix whose products can be limited to a band of its rows: an output head, whose
/// logits the loss computes one vocabulary chunk at a time.
public protocol RowBandMatrix: FrozenMatrix {
    /// y [n, band.count] = x [n, columns] . W[band]^T
    func multiply(_ x: UnsafePointer<Float>, count n: Int, rows band: Range<Int>, into y: UnsafeMutablePointer<Float>)
    /// dx [n, columns] += dy [n, band.count] . W[band]
    func multiplyTransposed(_ dy: UnsafePointer<Float>, count n: Int, rows band: Range<Int>, accumulateInto dx: UnsafeMutablePointer<Float>)
}

extension FrozenMatrix {
    /// Calls `body` with W [rows, columns] as row-major Float32: a `DenseMatrix`'s own storage,
    /// read in place, or a temporary expanded copy of any other matrix. For repacking at load.
    ///
    /// Usage: `try source.withFloat32Rows { w in pack(w) }`
    public func withFloat32Rows<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        if let dense = self as? DenseMatrix { return try body(UnsafePointer(dense.tensor.pointer)) }
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(rows * columns, 1))
        defer { buffer.deallocate() }
        for r in 0..<rows { row(r, into: buffer + r * columns) }
        return try body(UnsafePointer(buffer))
    }
}

/// A frozen matrix held as a plain Float32 tensor.
///
/// Usage: `let w = try DenseMatrix(Tensor(shape: [out, in], scalars: values))`
public final class DenseMatrix: RowBandMatrix {
    public let tensor: Tensor

    public init(_ tensor: Tensor) throws {
        guard tensor.shape.rank == 2 else {
            throw TensorError.invalidShape(op: "DenseMatrix", shape: tensor.shape, expected: "[out, in]")
        }
        self.tensor = tensor
    }

    public var rows: Int { tensor.shape[0] }
    public var columns: Int { tensor.shape[1] }
    public var byteCount: Int { tensor.count * MemoryLayout<Float>.stride }

    public func multiply(_ x: UnsafePointer<Float>, count n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        GEMM.run(
            transposeA: false, transposeB: true, m: n, n: rows, k: columns, a: x, lda: columns,
            b: tensor.pointer, ldb: columns, beta: accumulate ? 1 : 0, c: y, ldc: rows)
    }

    public func multiplyTransposed(_ dy: UnsafePointer<Float>, count n: Int, accumulateInto dx: UnsafeMutablePointer<Float>) {
        GEMM.run(
            transposeA: false, transposeB: false, m: n, n: columns, k: rows, a: dy, lda: rows,
            b: tensor.pointer, ldb: columns, beta: 1, c: dx, ldc: columns)
    }

    public func row(_ r: Int, into destination: UnsafeMutablePointer<Float>) {
        destination.update(from: tensor.pointer + r * columns, count: columns)
    }

    public func multiply(_ x: UnsafePointer<Float>, count n: Int, rows band: Range<Int>, into y: UnsafeMutablePointer<Float>) {
        GEMM.run(
            transposeA: false, transposeB: true, m: n, n: band.count, k: columns, a: x, lda: columns,
            b: tensor.pointer + band.lowerBound * columns, ldb: columns, beta: 0, c: y, ldc: band.count)
    }

    public func multiplyTransposed(_ dy: UnsafePointer<Float>, count n: Int, rows band: Range<Int>, accumulateInto dx: UnsafeMutablePointer<Float>) {
        GEMM.run(
            transposeA: false, transposeB: false, m: n, n: columns, k: band.count, a: dy, lda: band.count,
            b: tensor.pointer + band.lowerBound * columns, ldb: columns, beta: 1, c: dx, ldc: columns)
    }
}
