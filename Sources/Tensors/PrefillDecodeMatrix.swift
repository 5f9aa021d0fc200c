/// One frozen weight held in two forms, each used where it measured fastest: products of few
/// rows (decoding a token per sequence) on `decode`, products of many rows (a prompt's prefill,
/// scoring, a training batch) on `prefill`.
///
/// On an AMX Xeon, decoding on quantised blocks ran 263.5 tok/s at batch 1 against 69.7 with
/// oneDNN bf16, while prefill 1x128 ran 1866 tok/s with oneDNN bf16 against 772 quantised
/// (docs/architecture.md, "Weight storage by CPU"). The price is both copies in memory.
///
/// Usage: `let w = PrefillDecodeMatrix(decode: quantised, prefill: try OneDNNMatrix(dense, precision: .bf16, forwardOnly: true))`
public final class PrefillDecodeMatrix: FrozenMatrix {
    /// Products of fewer rows than this run on `decode` (decoding batches are at most 16 rows).
    public static let defaultPrefillRows = 32

    public let decode: FrozenMatrix
    public let prefill: FrozenMatrix
    public let prefillRows: Int

    public init(decode: FrozenMatrix, prefill: FrozenMatrix, prefillRows: Int = PrefillDecodeMatrix.defaultPrefillRows) {
        precondition(decode.rows == prefill.rows && decode.columns == prefill.columns, "PrefillDecodeMatrix: both forms hold one weight")
        self.decode = decode; self.prefill = prefill; self.prefillRows = max(1, prefillRows)
    }

    public var rows: Int { decode.rows }
    public var columns: Int { decode.columns }
    public var byteCount: Int { decode.byteCount + prefill.byteCount }

    /// The form a product of `n` rows runs on.
    public func form(forRows n: Int) -> FrozenMatrix { n >= prefillRows ? prefill : decode }

    public func multiply(_ x: UnsafePointer<Float>, count n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        form(forRows: n).multiply(x, count: n, into: y, accumulate: accumulate)
    }

    /// Input gradients (no inference path needs them) run on the decode form, which every
    /// storage can transpose.
    public func multiplyTransposed(_ dy: UnsafePointer<Float>, count n: Int, accumulateInto dx: UnsafeMutablePointer<Float>) {
        decode.multiplyTransposed(dy, count: n, accumulateInto: dx)
    }

    public func row(_ r: Int, into destination: UnsafeMutablePointer<Float>) { decode.row(r, into: destination) }
}
