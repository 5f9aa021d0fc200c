import Autodiff
import CKernels
import Cluster
import Foundation
import Tensors

/// Data parallelism over the processes of a `Cluster` (Open MPI ranks): every rank holds the
/// frozen base and the adapters, plans the same optimiser step from the same seed, and runs
/// its own share of the step's micro-batches; gradients, loss and token counts are summed
/// across ranks before clipping and AdamW, so every rank applies the same update. Rank 0
/// alone writes the run directory. docs/distributed.md.
extension Trainer {
    /// Whether this rank runs micro-batch `index` of a step: micro-batches are dealt in turn
    /// (i to rank i mod N), so each round of N consecutive micro-batches has one on every rank.
    func ownsMicroBatch(_ index: Int) -> Bool { index % cluster.size == cluster.rank }

    /// Refuses a job whose ranks cannot share every step's micro-batches evenly.
    static func checkDivides(gradientAccumulation: Int, ranks: Int) throws {
        guard ranks > 1, gradientAccumulation % ranks != 0 else { return }
        let suggestion = ((gradientAccumulation + ranks - 1) / ranks) * ranks
        throw TrainingError.unsupported("""
            training.gradient_accumulation \(gradientAccumulation) does not divide across \(ranks) processes: each process runs an \
            equal share of a step's micro-batches (global batch = batch_size x gradient_accumulation). Use a multiple of \(ranks), \
            e.g. --set training.gradient_accumulation=\(suggestion) (with batch_size lowered to keep the global batch), or run \
            \(gradientAccumulation) process\(gradientAccumulation == 1 ? "" : "es")
            """)
    }

    /// Collects each micro-batch's adapter gradients and hands the optimiser their sum.
    ///
    /// With `training.gradient_reduction: ordered` (the default) the sum is taken in
    /// micro-batch order, 0 + g0 + g1 + ..., whichever rank computed each g: one process keeps a
    /// running sum; N processes keep their own micro-batches' gradients apart and, round by
    /// round (micro-batches kN ..< kN + N, one per rank), gather them with one Allgather and add
    /// them in order. N processes so apply bit for bit the update one process applies, for
    /// (A/N + N + 1) x P floats per process. `allreduce` keeps a running sum per rank and sums
    /// those with one Allreduce of P floats (less traffic with many ranks; equal to rounding).
    final class GradientAccumulator {
        let parameters: [Variable]
        let count: Int
        let cluster: Cluster
        let ordered: Bool
        /// A running sum (one process, or allreduce), else one slot per owned micro-batch.
        let slots: Int
        let storage: UnsafeMutablePointer<Float>

        init(parameters: [Variable], cluster: Cluster, microBatches: Int, ordered: Bool) {
            self.parameters = parameters
            self.cluster = cluster
            self.ordered = ordered
            count = parameters.reduce(0) { $0 + $1.value.count }
            slots = ordered && cluster.isDistributed ? max(1, microBatches / cluster.size) : 1
            storage = UnsafeMutablePointer<Float>.allocate(capacity: count * slots)
            storage.update(repeating: 0, count: count * slots)
        }

        deinit { storage.deallocate() }

        /// Takes the gradients the parameters hold after micro-batch `index` and clears them
        /// for the next one.
        func take(microBatch index: Int) {
            let copies = ordered && cluster.isDistributed
            let slot = copies ? storage + (index / cluster.size) * count : storage
            var offset = 0
            for p in parameters {
                if let g = p.grad {
                    if copies { (slot + offset).update(from: g.pointer, count: g.count) } else { tc_axpy(1, g.pointer, slot + offset, g.count) }
                }
                p.zeroGrad()
                offset += p.value.count
            }
        }

        /// Leaves the step's summed gradient in the parameters, on every rank.
        func finish() {
            var total = storage
            var allocated: UnsafeMutablePointer<Float>?
            if ordered && cluster.isDistributed {
                let sum = UnsafeMutablePointer<Float>.allocate(capacity: count)
                sum.update(repeating: 0, count: count)
                let round = UnsafeMutablePointer<Float>.allocate(capacity: count * cluster.size)
                defer { round.deallocate() }
                for k in 0..<slots {
                    cluster.allgather(storage + k * count, count: count, into: round)
                    for r in 0..<cluster.size { tc_axpy(1, round + r * count, sum, count) }
                }
                total = sum
                allocated = sum
            } else if !ordered {
                cluster.allreduceSum(storage, count: count)
            }
            defer { allocated?.deallocate() }
            var offset = 0
            for p in parameters {
                p.gradientBuffer().pointer.update(from: total + offset, count: p.value.count)
                offset += p.value.count
            }
        }
    }

    /// Stops the job when the ranks' adapters are no longer equal (they apply the same
    /// summed update, so they only differ if a reduction gave ranks different sums); checked
    /// before each checkpoint, which only rank 0 writes.
    func checkReplicasAgree() throws {
        guard cluster.isDistributed else { return }
        var sum = 0.0, squares = 0.0
        for p in lora.parameters {
            for i in 0..<p.value.count {
                let v = Double(p.value.pointer[i])
                sum += v
                squares += v * v
            }
        }
        let highest = cluster.allreduceMax([sum, squares]), lowest = cluster.allreduceMax([-sum, -squares])
        guard highest[0] == -lowest[0], highest[1] == -lowest[1] else {
            throw TrainingError.unsupported("""
                step \(step): the adapters differ between processes (sums \(-lowest[0])...\(highest[0])); stopping before the \
                checkpoint. Resume from the last checkpoint (\(lastCheckpointPath ?? "none")); if it happens again, run with \
                --mca coll ^tuned to rule out the reduction algorithm
                """)
        }
    }
}
