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
    /// The micro-batches of a step this rank runs: a contiguous share of the
    /// `gradient_accumulation` micro-batches (`Trainer.init` checks they divide evenly).
    func ownedMicroBatches(of count: Int) -> Range<Int> {
        let share = count / cluster.size
        return cluster.rank * share..<(cluster.rank + 1) * share
    }

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
    /// micro-batch order from each micro-batch's own gradients, whichever rank computed them
    /// (gathered with one allgather), so N processes apply bit for bit the update one process
    /// applies; `allreduce` sums on each rank first and then across ranks (one allreduce, less
    /// traffic with many ranks, equal to ~1e-6 relative).
    final class GradientAccumulator {
        let parameters: [Variable]
        let count: Int
        let cluster: Cluster
        let ordered: Bool
        /// This rank's micro-batches, and one gradient slot per owned micro-batch (ordered) or
        /// a running sum (allreduce).
        let owned: Range<Int>
        let storage: UnsafeMutablePointer<Float>
        let slots: Int

        init(parameters: [Variable], cluster: Cluster, owned: Range<Int>, ordered: Bool) {
            self.parameters = parameters
            self.cluster = cluster
            self.owned = owned
            self.ordered = ordered
            count = parameters.reduce(0) { $0 + $1.value.count }
            slots = ordered ? owned.count : 1
            storage = UnsafeMutablePointer<Float>.allocate(capacity: count * max(slots, 1))
            storage.update(repeating: 0, count: count * max(slots, 1))
        }

        deinit { storage.deallocate() }

        /// Takes the gradients the parameters hold after micro-batch `index` and clears them
        /// for the next one.
        func take(microBatch index: Int) {
            let slot = ordered ? storage + (index - owned.lowerBound) * count : storage
            var offset = 0
            for p in parameters {
                if let g = p.grad {
                    if ordered { (slot + offset).update(from: g.pointer, count: g.count) } else { tc_axpy(1, g.pointer, slot + offset, g.count) }
                }
                p.zeroGrad()
                offset += p.value.count
            }
        }

        /// Leaves the step's summed gradient in the parameters, on every rank.
        func finish() {
            let total: UnsafeMutablePointer<Float>
            var gathered: UnsafeMutablePointer<Float>?
            if ordered {
                // Every micro-batch's gradient on every rank, in micro-batch order (ranks own
                // contiguous shares), then summed in that order.
                let all = UnsafeMutablePointer<Float>.allocate(capacity: count * slots * cluster.size)
                gathered = all
                cluster.allgather(storage, count: count * slots, into: all)
                total = all
                for i in 1..<max(1, slots * cluster.size) { tc_axpy(1, all + i * count, total, count) }
            } else {
                cluster.allreduceSum(storage, count: count)
                total = storage
            }
            defer { gathered?.deallocate() }
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
