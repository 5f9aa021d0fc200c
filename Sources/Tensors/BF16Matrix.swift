import CKernels

/// The instruction sequence that multiplies bfloat16 operands. All three compute the same
/// Float32 sums in the same order (per pair of k, the odd element's product first, each
/// addition rounded, as the ISA defines `vdpbf16ps`; a product of two bf16 values is exact in
/// Float32), so a model gives the same numbers whichever runs, apart from denormals, which
/// `vdpbf16ps` flushes to zero. The AVX2 and portable kernels are tested bitwise equal.
///
/// Usage: `let w = try BF16Matrix(DenseMatrix(weight), kernel: .portable)`
public enum BF16Kernel: Int32, CaseIterable, Sendable, CustomStringConvertible {
    /// AVX512_BF16's `vdpbf16ps`: two products per lane per instruction.
    case avx512BF16 = 1
    /// AVX2 + FMA: bf16 widened to Float32 by a shift, then FMAs; for CPUs without AVX512_BF16.
    case avx2 = 2
    /// Plain C, for any CPU.
    case portable = 3

    /// True when this build has the kernel and the running CPU can execute it.
    public var isSupported: Bool { tc_bf16_kernel_supported(Int32(rawValue)) != 0 }

    /// The fastest kernel among the features `cpu` reports that this CPU really has: features
    /// hidden by `THOUGHTCRIME_CPU_FEATURES` (for example `-avx512_bf16`) are not used, and
    /// features it adds are not trusted.
    public static func best(for cpu: CPUFeatures = .current) -> BF16Kernel {
        if cpu.hasAVX512BF16 && BF16Kernel.avx512BF16.isSupported { return .avx512BF16 }
        if cpu.avx2 && cpu.fma && BF16Kernel.avx2.isSupported { return .avx2 }
        return .portable
    }

    public var description: String {
        switch self {
        case .avx512BF16: return "AVX512_BF16 (vdpbf16ps)"
        case .avx2: return "AVX2+FMA emulation"
        case .portable: return "portable C"
        }
    }
}

/// A frozen matrix rounded to bfloat16 and packed once in the layout of the AVX512_BF16
/// dot-product instruction, in both orientations: W for the forward product and W^T for the
/// input gradient. Activations are rounded to bfloat16 per product; sums accumulate in Float32.
///
/// Both packings together take as many bytes as one Float32 copy. Every CPU can multiply it
/// (`BF16Kernel`); where AVX512_BF16 is missing the products are emulated and slower than
/// Float32 sgemm, which is why `WeightStorage.automatic` picks it only where it pays.
///
/// Usage: `let w = try BF16Matrix(DenseMatrix(weight))`
public final class BF16Matrix: RowBandMatrix {
    public let rows: Int
    public let columns: Int
    /// The kernel every product of this matrix runs.
    public let kernel: BF16Kernel
    /// W as B^T [rows, columns] for y = x W^T.
    private let forward: UnsafeMutablePointer<UInt16>
    /// W^T as B^T [columns, rows] for dx = dy W.
    private let transposed: UnsafeMutablePointer<UInt16>
    private let forwardCount, transposedCount: Int

    /// The kernel new matrices use unless told otherwise: the best this CPU has.
    public static let defaultKernel: BF16Kernel = .best()

    public init(_ source: FrozenMatrix, kernel: BF16Kernel = BF16Matrix.defaultKernel) throws {
        guard kernel.isSupported else {
            throw TensorError.invalidArgument(op: "BF16Matrix", message: "this CPU cannot run the \(kernel) kernel (see `thoughtcrime doctor`)")
        }
        self.kernel = kernel
        rows = source.rows; columns = source.columns
        let (rows, columns) = (source.rows, source.columns)
        let forwardCount = tc_bf16_packed_count(Int64(rows), Int64(columns))
        let transposedCount = tc_bf16_packed_count(Int64(columns), Int64(rows))
        let forward = Self.allocate(forwardCount), transposed = Self.allocate(transposedCount)
        source.withFloat32Rows { dense in
            tc_bf16_pack(dense, Int64(rows), Int64(columns), Int64(columns), 1, forward)
            tc_bf16_pack(dense, Int64(columns), Int64(rows), 1, Int64(columns), transposed)
        }
        self.forwardCount = forwardCount; self.transposedCount = transposedCount
        self.forward = forward; self.transposed = transposed
    }

    deinit {
        UnsafeMutableRawPointer(forward).deallocate()
        UnsafeMutableRawPointer(transposed).deallocate()
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<UInt16> {
        UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 2, alignment: 64).bindMemory(to: UInt16.self, capacity: max(count, 1))
    }

    public var byteCount: Int { (forwardCount + transposedCount) * 2 }

    /// c [n, nEnd - nBegin] (+)= a [n, k] . B^T[nBegin ..< nEnd, pairBegin * 2 ..< pairBegin * 2 + k],
    /// split by 16-column panels over the thread pool. nBegin must be a multiple of 16.
    private static func product(kernel: BF16Kernel, _ a: UnsafePointer<Float>, n: Int, k: Int, packed: UnsafePointer<UInt16>, packedPairs: Int,
                                pairBegin: Int, columns nRange: Range<Int>, into c: UnsafeMutablePointer<Float>, accumulate: Bool) {
        guard n > 0, !nRange.isEmpty else { return }
        let pairs = (k + 1) / 2, kp = 2 * pairs
        let a16 = UnsafeMutablePointer<UInt16>.allocate(capacity: n * kp)
        defer { a16.deallocate() }
        ThreadPool.shared.parallelFor(n, minChunk: 64) { r in
            tc_bf16_convert_rows(a + r.lowerBound * k, Int64(r.count), Int64(k), Int64(k), a16 + r.lowerBound * kp)
        }
        let firstPanel = nRange.lowerBound / 16, endPanel = (nRange.upperBound + 15) / 16
        let pairsOfPanels = (endPanel - firstPanel + 1) / 2
        // about 1M multiply-adds per task
        let minChunk = max(1, (1 << 20) / max(1, 32 * k * n))
        ThreadPool.shared.parallelFor(pairsOfPanels, minChunk: minChunk) { range in
            _ = tc_bf16_gemm(Int32(kernel.rawValue), a16, Int64(n), Int64(pairs), packed, Int64(packedPairs), Int64(pairBegin),
                             Int64(nRange.lowerBound), Int64(nRange.upperBound), c, Int64(nRange.count), accumulate ? 1 : 0,
                             Int64(firstPanel + range.lowerBound * 2), Int64(min(endPanel, firstPanel + range.upperBound * 2)))
        }
    }

    public func multiply(_ x: UnsafePointer<Float>, count n: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        Self.product(kernel: kernel, x, n: n, k: columns, packed: forward, packedPairs: (columns + 1) / 2, pairBegin: 0, columns: 0..<rows,
                     into: y, accumulate: accumulate)
    }

    public func multiplyTransposed(_ dy: UnsafePointer<Float>, count n: Int, accumulateInto dx: UnsafeMutablePointer<Float>) {
        Self.product(kernel: kernel, dy, n: n, k: rows, packed: transposed, packedPairs: (rows + 1) / 2, pairBegin: 0, columns: 0..<columns,
                     into: dx, accumulate: true)
    }

    /// Bands must start at a multiple of 16 rows.
    public func multiply(_ x: UnsafePointer<Float>, count n: Int, rows band: Range<Int>, into y: UnsafeMutablePointer<Float>) {
        precondition(band.lowerBound % 16 == 0 && band.upperBound <= rows, "BF16Matrix bands start at a multiple of 16")
        Self.product(kernel: kernel, x, n: n, k: columns, packed: forward, packedPairs: (columns + 1) / 2, pairBegin: 0, columns: band,
                     into: y, accumulate: false)
    }

    public func multiplyTransposed(_ dy: UnsafePointer<Float>, count n: Int, rows band: Range<Int>, accumulateInto dx: UnsafeMutablePointer<Float>) {
        precondition(band.lowerBound % 16 == 0 && band.upperBound <= rows, "BF16Matrix bands start at a multiple of 16")
        Self.product(kernel: kernel, dy, n: n, k: band.count, packed: transposed, packedPairs: (rows + 1) / 2, pairBegin: band.lowerBound / 2,
                     columns: 0..<columns, into: dx, accumulate: true)
    }

    public func row(_ r: Int, into destination: UnsafeMutablePointer<Float>) {
        for c in 0..<columns { destination[c] = tc_bf16_packed_get(forward, Int64(columns), Int64(r), Int64(c)) }
    }
}
