import CKernels
import Tensors
import XCTest

/// Every thread that computes reads and writes subnormal floats as zero (FTZ and DAZ), so no
/// Intel core takes a microcode assist per subnormal operand (docs/architecture.md).
///
/// The products below multiply an input of subnormals (1e-39) by ones: with DAZ each product
/// is 0, without it each sums to k * 1e-39, a normal float. So a thread without the mode that
/// computes any part of the result leaves a non-zero in it.
final class SubnormalFlushingTests: XCTestCase {
    let subnormal: Float = 1e-39

    override func setUp() {
        SubnormalFlushing.enableForProcess()
    }

    func testTheSubnormalInputIsSubnormalAndItsSumsAreNot() {
        XCTAssertTrue(subnormal.isSubnormal)
        XCTAssertFalse((subnormal * 512).isSubnormal)
    }

    func testTheCallingThreadFlushesSubnormals() {
        XCTAssertTrue(SubnormalFlushing.isOnForCurrentThread)
    }

    func testEveryPoolThreadFlushesSubnormals() {
        let (threads, flushing) = SubnormalFlushing.poolThreads()
        XCTAssertEqual(threads, ThreadPool.shared.workers, "every pool thread took one probe chunk")
        XCTAssertEqual(flushing, threads)
    }

    func testAPoolHelperFlushesEvenWhenItsCreatorDoesNot() {
        SubnormalFlushing.setForCurrentThread(false)
        defer { SubnormalFlushing.setForCurrentThread(true) }
        let pool = ThreadPool(workers: 2)
        let (threads, flushing) = pool.subnormalFlushing()
        XCTAssertEqual(threads, 2)
        XCTAssertEqual(flushing, 1, "the helper flushes; the caller, turned off here, does not")
    }

    func testTheProbeSaysSoWhenItCouldNotReachEveryThread() {
        // Started from inside a pool task, the probe's loop runs serially on one thread: its
        // chunks cannot meet, so it reports -1 instead of counting one thread twice.
        let pool = ThreadPool(workers: 2)
        var inner: (threads: Int, flushing: Int)?
        pool.forEach(2) { i in if i == 0 { inner = pool.subnormalFlushing() } }
        XCTAssertEqual(inner?.threads, -1)
    }

    func testEveryOpenMPThreadFlushesSubnormals() throws {
        guard let (threads, flushing) = SubnormalFlushing.openMPThreads() else {
            throw XCTSkip("no OpenMP runtime is loaded in this process")
        }
        XCTAssertGreaterThanOrEqual(threads, 1)
        XCTAssertEqual(flushing, threads)
    }

    func product(m: Int, k: Int, n: Int) -> [Float] {
        let a = [Float](repeating: subnormal, count: m * k), b = [Float](repeating: 1, count: k * n)
        var c = [Float](repeating: -1, count: m * n)
        GEMM.run(transposeA: false, transposeB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c, ldc: n)
        return c
    }

    func testPoolSplitProductsReadSubnormalInputsAsZero() {
        let c = product(m: 256, k: 512, n: 256)
        XCTAssertEqual(c.filter { $0 != 0 }.count, 0, "entries computed by a thread without DAZ")
    }

    func testOpenBLASThreadsReadSubnormalInputsAsZero() {
        GEMM.threading = .openBLAS
        defer { GEMM.threading = .threadPool }
        XCTAssertGreaterThan(openblasThreads(), 1, "OpenBLAS runs its own threads here")
        let c = product(m: 512, k: 512, n: 512)
        XCTAssertEqual(c.filter { $0 != 0 }.count, 0, "entries computed by an OpenBLAS thread without DAZ")
    }

    /// What `serve` did: its first product ran on a dispatch thread without the mode, and
    /// OpenBLAS started its stopped server threads from there when its thread count was set.
    func testOpenBLASThreadsRestartedFromAThreadWithoutTheModeStillFlush() throws {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var restarted = false
        let thread = Thread {
            SubnormalFlushing.setForCurrentThread(false)
            restarted = tc_openblas_restart_threads() != 0
            setOpenblasThreads(1)
            done.signal()
        }
        thread.start()
        done.wait()
        guard restarted else { throw XCTSkip("this OpenBLAS has no blas_thread_shutdown_, so its threads cannot be restarted") }
        GEMM.threading = .openBLAS
        defer { GEMM.threading = .threadPool }
        let c = product(m: 512, k: 512, n: 512)
        XCTAssertEqual(c.filter { $0 != 0 }.count, 0, "entries computed by an OpenBLAS thread without DAZ")
    }

    func testOneDNNProductsReadSubnormalInputsAsZero() throws {
        guard case .success = OneDNNPrecision.float32.implementation else {
            throw XCTSkip("oneDNN has no f32 matmul here")
        }
        let (rows, columns, n) = (256, 512, 512)
        let weights = try DenseMatrix(Tensor(shape: [rows, columns], scalars: [Float](repeating: 1, count: rows * columns)))
        let matrix = try OneDNNMatrix(weights, precision: .float32)
        let x = [Float](repeating: subnormal, count: n * columns)
        var y = [Float](repeating: -1, count: n * rows)
        x.withUnsafeBufferPointer { matrix.multiply($0.baseAddress!, count: n, into: &y, accumulate: false) }
        XCTAssertEqual(y.filter { $0 != 0 }.count, 0, "entries computed by an OpenMP thread without DAZ")
    }
}
