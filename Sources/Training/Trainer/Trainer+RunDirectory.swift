import Cluster
import Foundation
import ModelFormats
import LoRA
import Models
import Tensors

extension Trainer {
    var metricsPath: String { (runDirectory as NSString).appendingPathComponent("metrics.jsonl") }

    /// Creates the run directory with its resolved config, refusing to overwrite another run.
    /// Called only after the model and data have loaded, so failures leave nothing behind.
    func prepareRunDirectory() throws {
        let fm = FileManager.default
        if resumed { return }
        let resolvedConfig = (runDirectory as NSString).appendingPathComponent("config.resolved.yaml")
        if restartsWithoutCheckpoint {
            // Whatever the stopped run left (its metrics, a half-written first checkpoint) goes.
            for name in (try? fm.contentsOfDirectory(atPath: runDirectory)) ?? [] where name != "config.resolved.yaml" && name != RunDirectoryLock.fileName {
                try? fm.removeItem(atPath: (runDirectory as NSString).appendingPathComponent(name))
            }
            try DurableFiles.replaceTextFile(at: resolvedConfig, with: config.resolvedYAML(), directory: runDirectory)
            return
        }
        // A run killed while writing its resolved config left only the temporary file (and the
        // lock file): nothing of it can be resumed, so it does not block a new start.
        let leftovers: Set<String> = ["config.resolved.yaml.tmp", RunDirectoryLock.fileName]
        func refuseAnotherRun() throws {
            if let contents = try? fm.contentsOfDirectory(atPath: runDirectory), !Set(contents).isSubset(of: leftovers) {
                throw TrainingError.runDirectoryExists(path: runDirectory)
            }
        }
        try refuseAnotherRun()
        do {
            try fm.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.io(path: runDirectory, reason: "cannot create the run directory: \(error.localizedDescription)")
        }
        // Two finetunes started at once both get here; the lock lets one through, and that
        // one looks again in case the other finished a run in between.
        runDirectoryLock = try RunDirectoryLock(directory: runDirectory, holder: "finetune")
        try refuseAnotherRun()
        try? fm.removeItem(atPath: resolvedConfig + ".tmp")
        FaultInjection.point("run-directory-created")
        try DurableFiles.replaceTextFile(
            at: (runDirectory as NSString).appendingPathComponent("config.resolved.yaml"), with: config.resolvedYAML(), directory: runDirectory,
            faultPoint: "config")
    }

    func appendMetrics(_ metrics: StepMetrics) throws { try appendMetricsLine(metrics.json) }

    /// Appends one JSON object as a line of metrics.jsonl.
    func appendMetricsLine(_ object: [String: Any]) throws {
        guard cluster.isRoot else { return }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) + Data("\n".utf8)
        do {
            try MetricsAppend.appendLine(data, to: metricsPath)
        } catch let MetricsAppend.Failure.write(code) {
            throw TrainingError.metricsFailed(
                path: metricsPath, reason: MetricsAppend.describe(code), runDirectory: runDirectory, lastCheckpoint: lastCheckpointPath)
        }
        FaultInjection.point("metrics-appended")
        if config.logging.tensorboard { appendTensorBoardEvent(object) }
    }

    /// The metrics line as TensorBoard scalars. metrics.jsonl stays the record of the run, so a
    /// failure here is a warning, not a reason to stop training.
    func appendTensorBoardEvent(_ object: [String: Any]) {
        guard !tensorBoardFailed, let step = object["step"] as? Int else { return }
        let entry = MetricsLog.Entry(step: step, json: object)
        let wallTime = entry.time.flatMap(MetricsTime.seconds) ?? Date().timeIntervalSince1970
        do {
            if tensorBoardFile == nil { tensorBoardFile = try TensorBoardEventFile(creatingIn: runDirectory, wallTime: wallTime) }
            try tensorBoardFile?.append(step: step, wallTime: wallTime, scalars: TensorBoardEventFile.scalars(of: entry))
        } catch {
            tensorBoardFailed = true
            progress.message("warning: stopped writing TensorBoard events: \(error)")
        }
    }

    /// Everything a resume needs, as of the current step.
    func checkpointState() -> CheckpointState {
        var modules: [String: CheckpointState.AdapterWeights] = [:]
        var moments: [String: CheckpointState.AdapterMoments] = [:]
        let optimizerState = optimizer.exportState()
        for (i, adapter) in lora.adapters.enumerated() {
            modules[adapter.module] = .init(a: adapter.a.value, b: adapter.b.value)
            let ma = optimizerState.moments[2 * i], mb = optimizerState.moments[2 * i + 1]
            moments[adapter.module] = .init(mA: ma.m, vA: ma.v, mB: mb.m, vB: mb.v)
        }
        let spec = lora.spec
        return CheckpointState(
            step: step, epoch: epoch, tokensSeen: tokensSeen,
            createdUTC: ISO8601DateFormatter().string(from: Date()),
            baseFingerprint: loaded.fingerprint, tokenizerFingerprint: loaded.tokenizerFingerprint,
            configYAML: config.resolvedYAML(),
            adapter: .init(rank: spec.rank, alpha: Double(spec.alpha), useRSLoRA: spec.useRSLoRA, targets: spec.targetModules, modules: modules),
            optimizer: .init(beta1: optimizer.beta1, beta2: optimizer.beta2, epsilon: optimizer.epsilon,
                             weightDecay: optimizer.weightDecay, step: optimizerState.step, moments: moments),
            scheduler: .init(name: schedule.kind.rawValue, warmupSteps: schedule.warmupSteps, totalSteps: schedule.totalSteps,
                             lastLR: schedule.learningRate(atStep: max(0, step - 1)), minLRRatio: schedule.minLRRatio, baseLR: schedule.baseLR),
            rngState: rng.stateWords,
            data: .init(order: order.map(Int64.init), cursor: Int64(cursor), epoch: Int64(epoch)),
            metrics: .init(lastLoss: lastLoss, lastValidationLoss: lastValidationLoss, bestValidationLoss: bestValidationLoss,
                           bestStep: bestStep, evaluationsWithoutImprovement: evaluationsWithoutImprovement))
    }

    /// The checkpoint of the best step, when it is on disk.
    var bestCheckpointPath: String? {
        bestStep.map { (runDirectory as NSString).appendingPathComponent(CheckpointFormat.fileName(step: $0)) }
            .flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil }
    }

    /// Points RUN/best at the checkpoint of `bestStep` (written at that step).
    func markBest() throws {
        guard cluster.isRoot, let bestStep else { return }
        do {
            try CheckpointWriter(runDirectory: runDirectory, keepLast: config.checkpoint.keepLast).markBest(step: bestStep)
        } catch {
            throw TrainingError.checkpointFailed(step: step, reason: "cannot write the best pointer: \(error)", runDirectory: runDirectory,
                                                 lastCheckpoint: lastCheckpointPath)
        }
    }

    func writeCheckpoint() throws {
        try checkReplicasAgree()
        guard cluster.isRoot else {
            lastCheckpointPath = (runDirectory as NSString).appendingPathComponent(CheckpointFormat.fileName(step: step))
            return
        }
        let writer = try CheckpointWriter(runDirectory: runDirectory, keepLast: config.checkpoint.keepLast)
        do {
            lastCheckpointPath = try writer.write(checkpointState())
        } catch {
            throw TrainingError.checkpointFailed(step: step, reason: "\(error)", runDirectory: runDirectory, lastCheckpoint: lastCheckpointPath)
        }
    }

    /// Continues the run in `runDirectory` from its latest checkpoint.
    ///
    /// The resolved config stored in the checkpoint is used (with optional `--set` overrides);
    /// the base model and tokenizer must have the fingerprints the run was trained with.
    /// Usage: `let trainer = try Trainer.resume(runDirectory: "checkpoints/medical")`
    public static func resume(runDirectory: String, overrides: [String] = [], progress: ProgressReporter? = nil,
                              cluster: Cluster = .shared) throws -> Trainer {
        // Held from before the checkpoint is chosen until the trainer goes: a second resume of
        // the same run is refused instead of training beside this one.
        var lock: RunDirectoryLock?
        if cluster.isRoot, FileManager.default.fileExists(atPath: runDirectory) {
            lock = try RunDirectoryLock(directory: runDirectory, holder: "resume")
        }
        let latest: CheckpointReader.LatestReadable
        do {
            latest = try CheckpointReader.readLatest(in: runDirectory)
        } catch CheckpointError.noCheckpoint {
            let trainer = try restartWithoutCheckpoint(runDirectory: runDirectory, overrides: overrides, progress: progress, cluster: cluster)
            trainer.runDirectoryLock = lock
            return trainer
        }
        let path = latest.path, state = latest.state
        // Stored paths resolve against the run's launch directory; --set paths against this one.
        let stored = try RunConfig.parse(yaml: state.configYAML, source: path)
        var config = try stored.resolvingStoredPaths().withOverrides(overrides, source: path)
        try requireStoredInputs(config, launchDirectory: stored.run.launchDirectory, runDirectory: runDirectory)
        // The run continues where it is, even if its directory was moved or renamed.
        config.run.outputDir = (runDirectory as NSString).deletingLastPathComponent
        config.run.name = (runDirectory as NSString).lastPathComponent
        let continuesOldRendering = state.formatVersion < 2 && config.data.chainOfThought == .disabled
            && !overrides.contains { $0.hasPrefix("data.chain_of_thought=") }
        if continuesOldRendering {
            // Written before `disabled` left the empty think block out of the loss: the run goes
            // on with the rendering it was trained with, so that resume stays bitwise.
            config.data.chainOfThought = .disabledEmptyBlockTrained
        }
        // DPO's reference is the starting model, so its adapter is loaded before the checkpoint's.
        let trainer = try Trainer(config: config, progress: progress, loadsStartingAdapter: config.training.objective == .dpo, cluster: cluster)
        guard trainer.loaded.fingerprint == state.baseFingerprint else {
            throw TrainingError.fingerprintMismatch(what: "base model", checkpoint: state.baseFingerprint, configured: trainer.loaded.fingerprint, path: config.model.path)
        }
        guard trainer.loaded.tokenizerFingerprint == state.tokenizerFingerprint else {
            throw TrainingError.fingerprintMismatch(what: "tokenizer", checkpoint: state.tokenizerFingerprint, configured: trainer.loaded.tokenizerFingerprint, path: config.model.path)
        }
        for warning in latest.warnings { trainer.progress.message(warning) }
        if continuesOldRendering {
            trainer.progress.message("\(path) was written before issue 28 (checkpoint format_version \(state.formatVersion)): its run continues with data.chain_of_thought: disabled_empty_block_trained, the loss on the empty think block it was trained with")
        }
        try trainer.restore(state, from: path)
        trainer.runDirectoryLock = lock
        return trainer
    }

    /// The model and training data a stored config names must still be where it says; the
    /// error names the directory relative paths were resolved against.
    private static func requireStoredInputs(_ config: RunConfig, launchDirectory: String?, runDirectory: String) throws {
        let base = launchDirectory.map { "relative paths resolve against its launch directory \($0)" }
            ?? "it records no launch directory, so relative paths resolve against the current directory \(FileManager.default.currentDirectoryPath)"
        for (key, path) in [("model.path", config.model.path), ("data.train", config.data.train)] + config.data.mix.map { ("data.mix", $0.path) }
        where !FileManager.default.fileExists(atPath: path) {
            throw TrainingError.io(path: runDirectory, reason: "the run's \(key) \(path) does not exist (\(base)); pass --set \(key == "data.mix" ? "data.mix=..." : "\(key)=PATH") to point it elsewhere")
        }
    }

    /// A run stopped before its first checkpoint has only its resolved config: it starts again
    /// from step 0 with that config, which (same seed, same data) gives the run it would have
    /// been.
    private static func restartWithoutCheckpoint(runDirectory: String, overrides: [String], progress: ProgressReporter?,
                                                 cluster: Cluster) throws -> Trainer {
        let configPath = (runDirectory as NSString).appendingPathComponent("config.resolved.yaml")
        guard let text = try? InputFile.readText(configPath) else {
            throw TrainingError.nothingToResume(path: runDirectory)
        }
        let stored = try RunConfig.parse(yaml: text, source: configPath)
        var config = try stored.resolvingStoredPaths().withOverrides(overrides, source: configPath)
        try requireStoredInputs(config, launchDirectory: stored.run.launchDirectory, runDirectory: runDirectory)
        config.run.outputDir = (runDirectory as NSString).deletingLastPathComponent
        config.run.name = (runDirectory as NSString).lastPathComponent
        let trainer = try Trainer(config: config, progress: progress, cluster: cluster)
        trainer.restartsWithoutCheckpoint = true
        trainer.progress.message("\(runDirectory) stopped before its first checkpoint; starting it again from step 0 with its config.resolved.yaml")
        return trainer
    }

    func restore(_ state: CheckpointState, from path: String) throws {
        var moments: [AdamW.Moments] = []
        for adapter in lora.adapters {
            guard let weights = state.adapter.modules[adapter.module], let m = state.optimizer.moments[adapter.module] else {
                throw CheckpointError.damaged(file: path, reason: "no adapter or optimiser state for \(adapter.module)")
            }
            guard weights.a.shape == adapter.a.shape, weights.b.shape == adapter.b.shape else {
                throw LoRAError.shapeMismatch(module: adapter.module, tensor: "lora_A/lora_B", expected: adapter.a.shape.dims + adapter.b.shape.dims,
                                             found: weights.a.shape.dims + weights.b.shape.dims)
            }
            try adapter.a.value.assign(weights.a)
            try adapter.b.value.assign(weights.b)
            moments.append(.init(m: m.mA, v: m.vA))
            moments.append(.init(m: m.mB, v: m.vB))
        }
        guard state.adapter.modules.count == lora.adapters.count else {
            throw CheckpointError.damaged(file: path, reason: "it has \(state.adapter.modules.count) adapters, the config gives \(lora.adapters.count)")
        }
        try optimizer.importState(.init(step: state.optimizer.step, moments: moments))
        rng = try TrainingRNG(stateWords: state.rngState)
        step = state.step
        epoch = Int(state.data.epoch)
        order = state.data.order.map(Int.init)
        cursor = Int(state.data.cursor)
        guard order.count == trainExamples.count, Set(order) == Set(0..<trainExamples.count) else {
            throw CheckpointError.damaged(file: path, reason: "its data order does not match the \(trainExamples.count) training examples; was the data file changed?")
        }
        tokensSeen = state.tokensSeen
        lastLoss = state.metrics.lastLoss
        lastValidationLoss = state.metrics.lastValidationLoss
        bestValidationLoss = state.metrics.bestValidationLoss
        bestStep = state.metrics.bestStep
        evaluationsWithoutImprovement = state.metrics.evaluationsWithoutImprovement
        lastCheckpointPath = path
        resumed = true
        try truncateMetrics(after: step)
        progress.message("resuming \(runDirectory) at step \(step) of \(totalSteps) from \(path)")
        let was = state.scheduler
        if was.totalSteps != schedule.totalSteps || was.warmupSteps != schedule.warmupSteps || was.baseLR != schedule.baseLR
            || was.name != schedule.kind.rawValue || was.minLRRatio != schedule.minLRRatio {
            let next = schedule.learningRate(atStep: step)
            progress.message(String(
                format: "note: the learning-rate schedule differs from the checkpoint's (%@ over %d steps, warmup %d, lr %.3g -> now %@ over %d steps, warmup %d, lr %.3g); it is recomputed, so step %d trains at lr %.3e",
                was.name, was.totalSteps, was.warmupSteps, was.baseLR, schedule.kind.rawValue, schedule.totalSteps, schedule.warmupSteps,
                schedule.baseLR, step + 1, next))
        }
    }

    /// Drops metrics lines past the checkpoint, written by the run after its last checkpoint.
    func truncateMetrics(after step: Int) throws {
        guard cluster.isRoot else { return }
        guard let data = FileManager.default.contents(atPath: metricsPath) else { return }
        let kept = data.split(separator: UInt8(ascii: "\n")).filter { line in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], let s = o["step"] as? Int else { return false }
            return s <= step
        }
        let text = kept.map { String(decoding: $0, as: UTF8.self) + "\n" }.joined()
        try DurableFiles.replaceTextFile(at: metricsPath, with: text, directory: runDirectory)
    }
}
