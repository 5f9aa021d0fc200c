import Foundation
import Tensors
import XCTest

final class ThreadPoolTests: XCTestCase {
    /// Counts how often each index of 0..<count is visited by `loop`.
    func visits(_ count: Int, _ loop: (UnsafeMutablePointer<Int>) -> Void) -> [Int] {
        var hits = [Int](repeating: 0, count: count)
        hits.withUnsafeMutableBufferPointer { loop($0.baseAddress!) }
        return hits
    }

    func testManySmallLoopsInARowEachCoverEveryIndexOnce() {
        // thousands of back-to-back loops exercise the hand-over between loop generations
        let pool = ThreadPool(workers: 3)
        for count in [2, 3, 7, 64, 1000] {
            for _ in 0..<500 {
                let hits = visits(count) { base in pool.parallelFor(count) { r in for i in r { base[i] += 1 } } }
                XCTAssertEqual(hits, [Int](repeating: 1, count: count))
            }
        }
    }

    func testForEachRunsEveryItemOnce() {
        let hits = visits(37) { base in ThreadPool(workers: 2).forEach(37) { base[$0] += 1 } }
        XCTAssertEqual(hits, [Int](repeating: 1, count: 37))
    }

    func testALoopInsideATaskRunsInsteadOfDeadlocking() {
        let pool = ThreadPool(workers: 2)
        let hits = visits(64) { base in
            pool.forEach(8) { outer in
                pool.parallelFor(8) { r in for i in r { base[outer * 8 + i] += 1 } }
            }
        }
        XCTAssertEqual(hits, [Int](repeating: 1, count: 64))
    }

    func testLoopsFromTwoThreadsAtOnceBothComplete() {
        let pool = ThreadPool(workers: 2)
        var a = [Int](repeating: 0, count: 4096), b = [Int](repeating: 0, count: 4096)
        a.withUnsafeMutableBufferPointer { pa in
            b.withUnsafeMutableBufferPointer { pb in
                let (x, y) = (pa.baseAddress!, pb.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: 2) { side in
                    let target = side == 0 ? x : y
                    for _ in 0..<200 { pool.parallelFor(4096, minChunk: 64) { r in for i in r { target[i] += 1 } } }
                }
            }
        }
        XCTAssertEqual(a, [Int](repeating: 200, count: 4096))
        XCTAssertEqual(b, [Int](repeating: 200, count: 4096))
    }

    func testAPoolOfOneWorkerRunsOnTheCaller() {
        let caller = Thread.current
        var threads: [Bool] = []
        ThreadPool(workers: 1).parallelFor(10) { _ in threads.append(Thread.current == caller) }
        XCTAssertEqual(threads, [true])
    }
}
