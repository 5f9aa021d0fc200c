import CKernels
import ModelFormats
import Tensors

/// A frozen weight kept in its ggml block format (Q4_1, Q8_0, Q4_K, ...) and expanded to
/// Float32 a panel of rows at a time while multiplying: QLoRA's idea on a CPU. Memory is the
/// quantised size; each product pays one dequantisation of the matrix.
///
/// Usage: `let w = try QuantizedMatrix(file: gguf, tensor: info)`
public final class QuantizedMatrix: FrozenMatrix {
    public let type: GGMLType
    public let rows: Int
    public let columns: Int
    let rowBytes: Int
    private let storage: UnsafeMutableRawPointer

    /// Copies the tensor's blocks out of the file. `rowOrder[r]` names the stored row that
    /// becomes row r (used to undo GGUF's q/k permutation); nil keeps the stored order.
    public init(file: GGUFFile, tensor info: GGUFTensorInfo, rowOrder: [Int]? = nil) throws {
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
        storage = UnsafeMutableRawPointer.allocate(byteCount: max(1, rows * rowBytes), alignment: 64)
        let source = file.rawBytes(of: info)
        guard let base = source.baseAddress, source.count >= rows * rowBytes else {
            throw ModelError.invalidInput("tensor \(info.name) has no data")
        }
        for r in 0..<rows {
            (storage + r * rowBytes).copyMemory(from: base + (rowOrder?[r] ?? r) * rowBytes, byteCount: rowBytes)
        }
    }

    deinit { storage.deallocate() }

    public var byteCount: Int { rows * rowBytes }

    /// Rows expanded per panel: large enough for an efficient GEMM, small enough to stay in cache.
    private var panelRows: Int { max(16, min(rows, (1 << 18) / max(columns, 1))) }

    private func dequantize(rows range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        let typeID = type.rawValue, cols = columns, rb = rowBytes, base = storage
        ThreadPool.shared.parallelFor(range.count, minChunk: max(1, 32768 / max(cols, 1))) { chunk in
            for r in chunk {
                _ = tc_dequantize_row(typeID, base + (range.lowerBound + r) * rb, destination + r * cols, Int64(cols))
            }
        }
    }

    public func multiply(_ x: UnsafePointer<Float>, count n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
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
        _ = tc_dequantize_row(type.rawValue, storage + r * rowBytes, destination, Int64(columns))
    }
}
