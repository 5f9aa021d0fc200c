import Foundation
import ModelFormats
import Tensors

/// The values a checkpoint must hold to be resumed or exported: the layout can be intact while
/// a value is not (a flipped bit, a hand edit, a hostile file), and each such value would
/// otherwise train on the wrong rows, "finish" a run that never ran, or export NaNs.
extension CheckpointState {
    /// Largest step, epoch or AdamW step accepted: the config's own caps (`training.max_steps`,
    /// `training.epochs`), which no run can pass.
    static let maximumStep = 10_000_000
    static let maximumEpoch = 1000

    /// Throws `CheckpointError.damaged` naming the first value out of range. `fileStep` is the
    /// step in the file's name (`step-000100.h5`), when it has one.
    func validate(file: String, fileStep: Int?) throws {
        func fail(_ reason: String) -> CheckpointError { .damaged(file: file, reason: reason) }
        guard (0...Self.maximumStep).contains(step) else { throw fail("step is \(step), outside 0...\(Self.maximumStep)") }
        if let fileStep, fileStep != step { throw fail("its step attribute is \(step) but its name says step \(fileStep)") }
        guard (0...Self.maximumEpoch).contains(epoch) else { throw fail("epoch is \(epoch), outside 0...\(Self.maximumEpoch)") }
        guard tokensSeen >= 0 else { throw fail("tokens_seen is \(tokensSeen)") }

        guard adapter.rank > 0 else { throw fail("/adapter rank is \(adapter.rank)") }
        guard adapter.alpha.isFinite, adapter.alpha > 0 else { throw fail("/adapter alpha is \(adapter.alpha)") }
        guard !adapter.modules.isEmpty else { throw fail("/adapter holds no modules") }
        for (module, w) in adapter.modules.sorted(by: { $0.key < $1.key }) {
            guard w.a.shape.rank == 2, w.b.shape.rank == 2, w.a.shape[0] == adapter.rank, w.b.shape[1] == adapter.rank else {
                throw fail("/adapter/\(module): lora_A \(w.a.shape) and lora_B \(w.b.shape) do not have rank \(adapter.rank)")
            }
            try requireFinite(w.a, "/adapter/\(module)/lora_A", file)
            try requireFinite(w.b, "/adapter/\(module)/lora_B", file)
        }

        guard (0.0..<1.0).contains(optimizer.beta1), (0.0..<1.0).contains(optimizer.beta2) else {
            throw fail("/optimizer betas are \(optimizer.beta1), \(optimizer.beta2); each must be in [0, 1)")
        }
        guard optimizer.epsilon.isFinite, optimizer.epsilon > 0 else { throw fail("/optimizer eps is \(optimizer.epsilon)") }
        guard optimizer.weightDecay.isFinite, optimizer.weightDecay >= 0 else {
            throw fail("/optimizer weight_decay is \(optimizer.weightDecay)")
        }
        guard (0...Self.maximumStep).contains(optimizer.step) else { throw fail("/optimizer step is \(optimizer.step)") }
        for (module, m) in optimizer.moments.sorted(by: { $0.key < $1.key }) {
            guard let w = adapter.modules[module] else { throw fail("/optimizer/\(module) has no adapter") }
            for (name, moment, weight) in [("m_A", m.mA, w.a), ("v_A", m.vA, w.a), ("m_B", m.mB, w.b), ("v_B", m.vB, w.b)] {
                guard moment.shape == weight.shape else {
                    throw fail("/optimizer/\(module)/\(name) has shape \(moment.shape), its weight \(weight.shape)")
                }
                try requireFinite(moment, "/optimizer/\(module)/\(name)", file, nonNegative: name.hasPrefix("v"))
            }
        }

        guard scheduler.warmupSteps >= 0, scheduler.totalSteps >= 0, scheduler.totalSteps <= Self.maximumStep else {
            throw fail("/scheduler warmup \(scheduler.warmupSteps) or total_steps \(scheduler.totalSteps) out of range")
        }
        for (name, v) in [("last_lr", scheduler.lastLR), ("base_lr", scheduler.baseLR)] where !(v.isFinite && v >= 0) {
            throw fail("/scheduler \(name) is \(v)")
        }
        guard (0.0...1.0).contains(scheduler.minLRRatio) else { throw fail("/scheduler min_lr_ratio is \(scheduler.minLRRatio)") }

        guard (0...Int64(data.order.count)).contains(data.cursor) else {
            throw fail("/data/cursor is \(data.cursor), outside 0...\(data.order.count) (the epoch's row count)")
        }
        guard (0...Int64(Self.maximumEpoch)).contains(data.epoch) else { throw fail("/data/epoch is \(data.epoch)") }
        guard data.order.allSatisfy({ $0 >= 0 && $0 < Int64(data.order.count) }), Set(data.order).count == data.order.count else {
            throw fail("/data/order is not a permutation of 0..<\(data.order.count)")
        }
        if let best = metrics.bestStep, !(0...step).contains(best) { throw fail("/metrics best_step is \(best), outside 0...\(step)") }
        if let loss = metrics.bestValidationLoss, !loss.isFinite { throw fail("/metrics best_val_loss is \(loss)") }
        guard (0...Self.maximumStep).contains(metrics.evaluationsWithoutImprovement) else {
            throw fail("/metrics evals_without_improvement is \(metrics.evaluationsWithoutImprovement)")
        }
        do { _ = try TrainingRNG(stateWords: rngState) } catch { throw fail("/rng: \(error)") }
        // The stored config is composed here, inside the isolated reader, with the same bounds as
        // any YAML: a hostile /config then costs this checkpoint (and falls back to the previous
        // one) instead of crashing `resume`, `export` or `generate` after the read.
        do {
            guard let root = try BoundedYAML.compose(configYAML), case .mapping = root else {
                throw fail("/config is not a YAML mapping")
            }
        } catch let error as BoundedYAML.LimitError {
            throw fail("/config is not readable YAML: \(error)")
        }
    }

    private func requireFinite(_ t: Tensor, _ name: String, _ file: String, nonNegative: Bool = false) throws {
        let p = t.pointer
        for i in 0..<t.count where !p[i].isFinite || (nonNegative && p[i] < 0) {
            throw CheckpointError.damaged(file: file, reason: "\(name) holds \(p[i]) at element \(i)")
        }
    }
}
