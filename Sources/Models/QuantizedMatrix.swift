import CKernels
import ModelFormats
import Tensors

/// A frozen weight kept in its ggml block format (Q4_1, Q8_0, Q4_K, ...) and expanded to
/// Float32 while multiplying: QLoRA's idea on a CPU. Memory is the quantised size.
///
/// Products of a few rows (decoding, up to `streamingMaxRows`) read each block once for all
/// rows and expand it in registers or L1; larger ones (prefill, training) expand panels of rows
/// and call sgemm. On AVX-512 CPUs, Q4_0, Q4_1 and Q8_0 matrices whose row count is a
/// multiple of 16 are held row-interleaved (the x16 layout of tc_quant_matmul.h, same size),
/// which lets the decode kernel compute 16 rows per vector instruction.
///
/// Usage: `let w = try QuantizedMatrix(file: gguf, tensor: info)`
public final class QuantizedMatrix: FrozenMatrix {
    public let type: GGMLType
    public let rows: Int
    public let columns: Int
    let rowBytes: Int
    /// Whether `storage` holds the x16 layout rather than ggml rows.
    public let isInterleaved: Bool
    private let storage: UnsafeMutableRawPointer

    /// Copies the tensor's blocks out of the file. `rowOrder[r]` names the stored row that
    /// becomes row r (used to undo GGUF's q/k permutation); nil keeps the stored order.
    /// `interleave: false` keeps ggml rows even where the x16 layout applies; it applies only
    /// on CPUs with AVX-512, where its kernel is vectorised.
    public init(file: GGUFFile, tensor info: GGUFTensorInfo, rowOrder: [Int]? = nil, interleave: Bool = true) throws {
        guard info.type.isSupportedForDequantization else {
            throw GGUFError.unsupportedTensorType(file: file.path, tensor: info.name, type: info.type)
        }
        guard info.dimensions.count == 2 else {
            throw ModelError.tensorShape(name: info.name, file: file.path, expected: [-1, -1], found: info.shape.dims)
        }
        type = info.type
        rows = info.rowCount
        columns = info.dimensions[0]
        rowBytes = info.bytesPerRow
        if let order = rowOrder, order.count != rows || Set(order) != Set(0..<rows) {
            throw ModelError.invalidInput("row order for \(info.name) is not a permutation of \(rows) rows")
        }
        let source = file.rawBytes(of: info)
        guard let base = source.baseAddress, source.count >= rows * rowBytes else {
            throw ModelError.invalidInput("tensor \(info.name) has no data")
        }
        let ggmlRows = UnsafeMutableRawPointer.allocate(byteCount: max(1, rows * rowBytes), alignment: 64)
        for r in 0..<rows {
            (ggmlRows + r * rowBytes).copyMemory(from: base + (rowOrder?[r] ?? r) * rowBytes, byteCount: rowBytes)
        }
        let interleavable = interleave && tc_x16_is_fast() != 0 && tc_x16_is_supported(type.rawValue) != 0
            && rows % 16 == 0 && rows > 0
            && columns % 32 == 0
        if interleavable {
            let packed = UnsafeMutableRawPointer.allocate(byteCount: rows * rowBytes, alignment: 64)
            _ = tc_x16_pack(type.rawValue, ggmlRows, rowBytes, Int64(rows), Int64(columns), packed)
            ggmlRows.deallocate()
            storage = packed
        } else {
            storage = ggmlRows
        }
        isInterleaved = interleavable
    }

    deinit { storage.deallocate() }

    public var byteCount: Int { rows * rowBytes }

    /// Largest number of activation rows multiplied by streaming the blocks; larger products
    /// expand panels to Float32 and use sgemm, which wins once the expansion is shared by
    /// enough rows.
    public static let streamingMaxRows = 16

    public func multiply(_ x: UnsafePointer<Float>, count n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if n <= Self.streamingMaxRows && columns % 16 == 0 {
            multiplyStreamingBlocks(x, count: n, into: y, accumulate: accumulate)
        } else {
            multiplyExpandingPanels(x, count: n, into: y, accumulate: accumulate)
        }
    }

    /// y [n, rows] (+)= x . W^T for a few rows of x, exact up to Float32 rounding, reading the
    /// blocks once for all n rows: x16 matrices expand 16 rows per register
    /// (tc_x16_matmul); others expand tiles of 4 rows into L1 (tc_quant_matmul_f32). Rows of W
    /// are split across the cores.
    public func multiplyStreamingBlocks(
        _ x: UnsafePointer<Float>, count n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        guard n > 0, rows > 0 else { return }
        let typeID = type.rawValue, base = UnsafeRawPointer(storage), rb = rowBytes, cols = Int64(columns)
        let ldy = Int64(rows), add: Int32 = accumulate ? 1 : 0
        if isInterleaved {
            let minGroups = max(1, minRowsPerTask / 16)
            ThreadPool.shared.parallelFor(rows / 16, minChunk: minGroups, chunksPerWorker: Self.chunksPerWorker) { groups in
                _ = tc_x16_matmul(typeID, base, Int64(groups.lowerBound), Int64(groups.upperBound), cols, x, Int64(n), y, ldy, add)
            }
            return
        }
        ThreadPool.shared.parallelFor(rows, minChunk: minRowsPerTask, chunksPerWorker: Self.chunksPerWorker) { range in
            _ = tc_quant_matmul_f32(typeID, base, rb, Int64(range.lowerBound), Int64(range.upperBound), cols, x,
                                    Int64(n), y, ldy, add)
        }
    }

    /// y_k [n, rows_k] = x . W_k^T for several x16 matrices sharing the input x (q, k and v;
    /// gate and up), in one parallel loop over all their row groups: one wake-up of the other
    /// core instead of one per matrix. Returns false, computing nothing, unless every matrix
    /// is interleaved with `columns` columns and n <= `streamingMaxRows`.
    public static func multiplyStreamingBlocks(
        _ x: UnsafePointer<Float>, count n: Int, products: [(matrix: QuantizedMatrix, y: UnsafeMutablePointer<Float>)]
    ) -> Bool {
        guard n > 0, n <= streamingMaxRows, let first = products.first?.matrix,
              products.allSatisfy({ $0.matrix.isInterleaved && $0.matrix.columns == first.columns }) else { return false }
        // group g of the concatenation belongs to product p with starts[p] <= g < starts[p + 1]
        var starts = [0]
        for p in products { starts.append(starts[starts.count - 1] + p.matrix.rows / 16) }
        let total = starts[starts.count - 1], cols = Int64(first.columns)
        let minGroups = max(1, first.minRowsPerTask / 16)
        ThreadPool.shared.parallelFor(total, minChunk: minGroups, chunksPerWorker: chunksPerWorker) { range in
            for (p, product) in products.enumerated() {
                let lo = max(range.lowerBound, starts[p]), hi = min(range.upperBound, starts[p + 1])
                guard lo < hi else { continue }
                let m = product.matrix
                _ = tc_x16_matmul(m.type.rawValue, m.storage, Int64(lo - starts[p]), Int64(hi - starts[p]), cols, x,
                                  Int64(n), product.y, Int64(m.rows), 0)
            }
        }
        return true
    }

    /// Weight bytes below which splitting a product across cores costs more than it saves.
    static let bytesPerTask = 48 * 1024

    /// Ranges per core in a streamed product: a few, so a core taken by another process holds
    /// up one range rather than half the matrix.
    static let chunksPerWorker = 4

    /// A second core pays for its wake-up only with enough weight bytes to stream.
    private var minRowsPerTask: Int { max(16, Self.bytesPerTask / max(rowBytes, 1)) }

    /// y [n, rows] (+)= x . W^T exactly (up to Float32 rounding): panels of W are expanded to
    /// Float32 and multiplied with sgemm.
    public func multiplyExpandingPanels(
        _ x: UnsafePointer<Float>, count n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        let panel = UnsafeMutablePointer<Float>.allocate(capacity: panelRows * columns)
        defer { panel.deallocate() }
        for p0 in stride(from: 0, to: rows, by: panelRows) {
            let p1 = min(rows, p0 + panelRows)
            dequantize(rows: p0..<p1, into: panel)
            // y[:, p0..<p1] (+)= x [n, in] . panel^T
            GEMM.run(transposeA: false, transposeB: true, m: n, n: p1 - p0, k: columns, a: x, lda: columns,
                     b: panel, ldb: columns, beta: accumulate ? 1 : 0, c: y + p0, ldc: rows)
        }
    }

    public func multiplyTransposed(_ dy: UnsafePointer<Float>, count n: Int, accumulateInto dx: UnsafeMutablePointer<Float>) {
        let panel = UnsafeMutablePointer<Float>.allocate(capacity: panelRows * columns)
        defer { panel.deallocate() }
        for p0 in stride(from: 0, to: rows, by: panelRows) {
            let p1 = min(rows, p0 + panelRows)
            dequantize(rows: p0..<p1, into: panel)
            // dx [n, in] += dy[:, p0..<p1] . panel
            GEMM.run(transposeA: false, transposeB: false, m: n, n: columns, k: p1 - p0, a: dy + p0, lda: rows,
                     b: panel, ldb: columns, beta: 1, c: dx, ldc: columns)
        }
    }

    public func row(_ r: Int, into destination: UnsafeMutablePointer<Float>) {
        if isInterleaved {
            _ = tc_x16_dequantize_row(type.rawValue, storage, Int64(columns), Int64(r), destination)
        } else {
            _ = tc_dequantize_row(type.rawValue, storage + r * rowBytes, destination, Int64(columns))
        }
    }

    /// Rows expanded per panel: large enough for an efficient GEMM, small enough to stay in cache.
    private var panelRows: Int { max(16, min(rows, (1 << 18) / max(columns, 1))) }

    private func dequantize(rows range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        let cols = columns
        ThreadPool.shared.parallelFor(range.count, minChunk: max(1, 32768 / max(cols, 1))) { chunk in
            for r in chunk { self.row(range.lowerBound + r, into: destination + r * cols) }
        }
    }
}
