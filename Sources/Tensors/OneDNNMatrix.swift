import CDNNL

/// The element type oneDNN multiplies in; the destination is always Float32.
public enum OneDNNPrecision: Int32, Sendable, CustomStringConvertible {
    /// Float32 weights and activations: the same products as sgemm, for checking the plumbing
    /// on CPUs where oneDNN has no bf16 matmul.
    case float32 = 0
    /// bfloat16 weights and activations (rounded to nearest even), Float32 accumulation: AMX
    /// tiles or AVX512_BF16 where the CPU has them.
    case bf16 = 1

    public var description: String { self == .bf16 ? "bf16" : "f32" }

    /// The oneDNN implementation a typical product (512 x 576 x 1536) runs in this precision on
    /// this CPU, or nil with the reason when oneDNN has none (bf16 below AVX512_CORE_BF16 in
    /// oneDNN 2.6). `ONEDNN_MAX_CPU_ISA` caps what oneDNN dispatches to.
    ///
    /// Usage: `if case .success(let impl) = OneDNNPrecision.bf16.implementation { print(impl) }`
    public var implementation: Result<String, TensorError> {
        var info = [CChar](repeating: 0, count: 256)
        let ok = tc_dnnl_probe(rawValue, 512, 576, 1536, &info, info.count) != 0
        let text = String(cString: info)
        return ok ? .success(text) : .failure(.invalidArgument(op: "OneDNNMatrix", message: text))
    }
}

/// A frozen matrix multiplied by oneDNN's matmul primitive, its weights converted and packed
/// once, at load, into the layout the primitive prefers (oneDNN's `format_tag_any`), in both
/// orientations: W for y = x W^T and W^T's blocks for dx = dy W. Activations are converted to
/// the precision per product by a oneDNN reorder; sums and results are Float32.
///
/// Rows are packed in blocks of `blockRows` so that an output head can be multiplied one
/// vocabulary chunk at a time: a band must start at a multiple of `blockRows`.
///
/// Usage: `let w = try OneDNNMatrix(DenseMatrix(weight), precision: .bf16)`
public final class OneDNNMatrix: RowBandMatrix {
    public let rows: Int
    public let columns: Int
    public let precision: OneDNNPrecision
    /// Rows per packed block (the whole matrix unless given).
    public let blockRows: Int
    /// Per block: B = W_block^T [columns, block] for the forward product.
    private var forward: [OpaquePointer] = []
    /// Per block: B = W_block [block, columns] for the input gradient.
    private var transposed: [OpaquePointer] = []

    /// The oneDNN implementation the forward product was packed for (e.g. `brg:avx512_core_amx_bf16`).
    public private(set) var implementation = ""

    /// - Parameters:
    ///   - typicalRows: the row count of the products to expect (tokens per batch), for which
    ///     oneDNN picks the packed layout; other counts reuse it.
    ///   - stagesActivations: reorder activations into a dense buffer before every product even
    ///     in Float32, as bf16 always does, so CPUs without bf16 test that path's staging.
    ///   - forwardOnly: pack only W for y = x W^T (inference: half the memory); input gradients
    ///     are then a programming error.
    public init(_ source: FrozenMatrix, precision: OneDNNPrecision, blockRows: Int? = nil, typicalRows: Int = 512,
                stagesActivations: Bool = false, forwardOnly: Bool = false) throws {
        rows = source.rows; columns = source.columns; self.precision = precision
        let block = min(max(1, blockRows ?? source.rows), max(source.rows, 1))
        self.blockRows = block
        let (rows, columns) = (source.rows, source.columns)
        var forward: [OpaquePointer] = [], transposed: [OpaquePointer] = []
        var failure: String?
        source.withFloat32Rows { dense in
            var error = [CChar](repeating: 0, count: 256)
            for r0 in stride(from: 0, to: rows, by: block) {
                let count = min(block, rows - r0), base = dense + r0 * columns
                guard let f = tc_dnnl_weights_create(precision.rawValue, Int64(columns), Int64(count), base, 1, Int64(columns),
                                                     Int64(typicalRows), stagesActivations ? 1 : 0, &error, error.count)
                else { failure = String(cString: error); return }
                forward.append(f)
                if forwardOnly { continue }
                guard let t = tc_dnnl_weights_create(precision.rawValue, Int64(count), Int64(columns), base, Int64(columns), 1,
                                                     Int64(typicalRows), stagesActivations ? 1 : 0, &error, error.count)
                else { failure = String(cString: error); return }
                transposed.append(t)
            }
        }
        self.forward = forward; self.transposed = transposed
        if let failure { throw TensorError.invalidArgument(op: "OneDNNMatrix", message: failure) }
        if let first = forward.first { implementation = String(cString: tc_dnnl_weights_impl(first)) }
    }

    deinit {
        for w in forward + transposed { tc_dnnl_weights_destroy(w) }
    }

    public var byteCount: Int { (forward + transposed).reduce(0) { $0 + Int(tc_dnnl_weights_bytes($1)) } }

    /// A failed product is a programming error (shapes are fixed at load), not bad input.
    private func product(_ w: OpaquePointer, _ a: UnsafePointer<Float>, n: Int, lda: Int, _ c: UnsafeMutablePointer<Float>,
                         ldc: Int, accumulate: Bool) {
        // The error text lives on the stack instead of in a heap array per product.
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { error in
            error[0] = 0
            let status = tc_dnnl_matmul(w, a, Int64(n), Int64(lda), c, Int64(ldc), accumulate ? 1 : 0, error.baseAddress!, error.count)
            precondition(status == 0, String(cString: error.baseAddress!))
        }
    }

    /// Blocks covering `band`, as (block index, first row); the band must start on a block.
    private func blocks(_ band: Range<Int>) -> [(index: Int, first: Int)] {
        precondition(band.lowerBound % blockRows == 0 && band.upperBound <= rows, "OneDNNMatrix bands start at a multiple of blockRows (\(blockRows))")
        precondition(band.upperBound == rows || band.count % blockRows == 0, "OneDNNMatrix bands end on a block")
        return stride(from: band.lowerBound, to: band.upperBound, by: blockRows).map { ($0 / blockRows, $0) }
    }

    public func multiply(_ x: UnsafePointer<Float>, count n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        guard n > 0 else { return }
        for (index, first) in blocks(0..<rows) {
            product(forward[index], x, n: n, lda: columns, y + first, ldc: rows, accumulate: accumulate)
        }
    }

    public func multiplyTransposed(_ dy: UnsafePointer<Float>, count n: Int, accumulateInto dx: UnsafeMutablePointer<Float>) {
        multiplyTransposed(dy, count: n, rows: 0..<rows, accumulateInto: dx)
    }

    public func multiply(_ x: UnsafePointer<Float>, count n: Int, rows band: Range<Int>, into y: UnsafeMutablePointer<Float>) {
        guard n > 0 else { return }
        for (index, first) in blocks(band) {
            product(forward[index], x, n: n, lda: columns, y + (first - band.lowerBound), ldc: band.count, accumulate: false)
        }
    }

    public func multiplyTransposed(_ dy: UnsafePointer<Float>, count n: Int, rows band: Range<Int>, accumulateInto dx: UnsafeMutablePointer<Float>) {
        guard n > 0 else { return }
        precondition(!transposed.isEmpty, "OneDNNMatrix: packed forward-only, for inference; input gradients need both packings")
        for (index, first) in blocks(band) {
            product(transposed[index], dy + (first - band.lowerBound), n: n, lda: band.count, dx, ldc: columns, accumulate: true)
        }
    }

    /// Unpacks the row's block (a oneDNN reorder): for exports and inspection, not hot paths.
    public func row(_ r: Int, into destination: UnsafeMutablePointer<Float>) {
        let index = r / blockRows, count = min(blockRows, rows - index * blockRows)
        let block = UnsafeMutablePointer<Float>.allocate(capacity: count * columns)
        defer { block.deallocate() }
        let local = r - index * blockRows
        if transposed.isEmpty {
            // The forward packing holds W_block^T [columns, count]: the row is a column of it.
            precondition(tc_dnnl_weights_read(forward[index], block) == 0, "OneDNNMatrix: unpacking a block failed")
            for c in 0..<columns { destination[c] = block[c * count + local] }
        } else {
            precondition(tc_dnnl_weights_read(transposed[index], block) == 0, "OneDNNMatrix: unpacking a block failed")
            destination.update(from: block + local * columns, count: columns)
        }
    }
}
