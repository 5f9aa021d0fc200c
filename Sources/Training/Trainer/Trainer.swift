import Autodiff
import Cluster
import Foundation
import LoRA
import Models
import Tensors
import Tokenizers

/// What a finished (or interrupted) run reports.
public struct TrainingSummary: Sendable {
    public var runDirectory: String
    public var stepsCompleted: Int
    public var totalSteps: Int
    public var firstLoss: Double?
    public var lastLoss: Double?
    public var firstValidationLoss: Double?
    public var lastValidationLoss: Double?
    public var interrupted: Bool
    public var lastCheckpoint: String?
    /// Loss on `data.test` after the last step (nil without a test set, or when interrupted).
    public var testLoss: Double? = nil
    /// Stopped by early stopping before `totalSteps`.
    public var stoppedEarly: Bool = false
    /// The checkpoint of the lowest validation loss, when kept (`checkpoint.keep_best` or early stopping).
    public var bestCheckpoint: String? = nil
    public var bestValidationLoss: Double? = nil
}

/// LoRA finetuning of a frozen base model from a `RunConfig`.
///
/// Everything is loaded and checked in `init` (model, data, rendering) before anything is
/// written, so a bad config or data file leaves no run directory behind. `run` trains,
/// logging metrics, validating and checkpointing atomically; `resume` continues a run from its
/// latest checkpoint so that the result is bitwise identical to an uninterrupted run.
///
/// Usage:
/// ```
/// let trainer = try Trainer(config: try RunConfig.load(path: "configs/medical.yaml"))
/// let summary = try trainer.run()
/// ```
public final class Trainer {
    public let config: RunConfig
    public let loaded: LoadedModel
    public let lora: LoRAModel
    public let trainExamples: [TokenizedExample]
    public let validationExamples: [TokenizedExample]
    public let trainReport: ExampleRenderer.Report
    public let runDirectory: String
    public let totalSteps: Int
    public var progress: ProgressReporter
    /// The processes training together (`mpirun`); one process when not launched by MPI.
    public let cluster: Cluster

    let optimizer: AdamW
    let schedule: LearningRateSchedule
    let planner: BatchPlanner
    let shuffler: EpochShuffler
    var rng: TrainingRNG

    // Position in training.
    public internal(set) var step = 0
    var epoch = 0
    var order: [Int] = []
    var cursor = 0  // examples of `order` consumed
    var epochPlan: (epoch: Int, order: [Int], plan: [[[Int]]]) = (-1, [], [])
    var tokensSeen = 0
    var lastCheckpointPath: String?
    /// This process's TensorBoard file (`logging.tensorboard`), created with the first metrics
    /// line; nil after a write failed, which is reported once and does not stop training.
    var tensorBoardFile: TensorBoardEventFile?
    var tensorBoardFailed = false
    /// Seconds the last step waited for the slowest process, and then spent summing across
    /// processes (metrics.jsonl `wait_s`, `reduce_s`).
    var lastWaitSeconds = 0.0
    var lastReduceSeconds = 0.0
    var lastValidationLoss: Double?
    /// Lowest validation loss of an evaluation during training, its step, and evaluations since.
    var bestValidationLoss: Double?
    var bestStep: Int?
    var evaluationsWithoutImprovement = 0
    /// Whether the best checkpoint is kept: asked for, or implied by early stopping.
    var keepsBest: Bool { config.checkpoint.keepBest || config.training.earlyStoppingPatience != nil }
    var lastLoss: Double?
    var resumed = false
    /// Resuming a run stopped before its first checkpoint: the run starts again from step 0 in
    /// its own directory, replacing what that directory holds.
    var restartsWithoutCheckpoint = false
    /// This process's claim on the run directory (root only), held until `run` returns.
    var runDirectoryLock: RunDirectoryLock?
    /// DPO's reference: each pair's summed answer log-probabilities under the starting model.
    var trainReference: [PairLogProbabilities] = []
    var validationReference: [PairLogProbabilities] = []
    /// `data.test`, rendered; measured once after the last step.
    var testExamples: [TokenizedExample] = []

    /// With `model.adapter` set, training starts from that adapter (PEFT directory, run
    /// directory, checkpoint or LoRA GGUF) instead of a fresh one. Its rank, alpha, use_rslora,
    /// target modules and layers must equal the config's `lora.*` (the error lists each
    /// difference with the `--set` that fixes it), so the resolved config stays a true
    /// description of the run; the optimiser state starts fresh.
    ///
    /// Under `mpirun` (`cluster` is then `Cluster.shared` with several ranks) each rank builds
    /// the same trainer; only rank 0 shows progress and writes files.
    public convenience init(config: RunConfig, progress: ProgressReporter? = nil, cluster: Cluster = .shared) throws {
        try self.init(config: config, progress: progress, loadsStartingAdapter: true, cluster: cluster)
    }

    /// `loadsStartingAdapter` false is for resuming: the checkpoint's adapters replace it anyway.
    init(config: RunConfig, progress: ProgressReporter?, loadsStartingAdapter: Bool, cluster: Cluster = .shared) throws {
        var config = config
        // Recorded in the resolved config and every checkpoint, so that the run's relative paths
        // can be found again from any directory (`resolvingStoredPaths`).
        if config.run.launchDirectory == nil { config.run.launchDirectory = FileManager.default.currentDirectoryPath }
        self.config = config
        self.cluster = cluster
        try Trainer.checkDivides(gradientAccumulation: config.training.gradientAccumulation, ranks: cluster.size)
        self.progress = cluster.isRoot ? (progress ?? Trainer.defaultProgress(config.logging)) : SilentProgress()
        FaultInjection.point("model-loading")
        let storage: WeightStorage
        switch config.model.weights {
        case .float32: storage = .float32
        case .quantized: storage = .quantized
        case .bf16: storage = .bf16
        case .onednnBF16: storage = .onednnBF16
        case .auto:
            let (automatic, notice) = WeightStorage.automatic()
            storage = automatic
            self.progress.message(notice)
        }
        loaded = try ModelLoader.load(path: config.model.path, weights: storage)
        loaded.model.gradientCheckpointing = config.training.gradientCheckpointing
        let tokenizer = try loaded.requireTokenizer()
        let renderer = ExampleRenderer(tokenizer: tokenizer, template: loaded.chatTemplate ?? .smolLM2, data: config.data)

        let pairs = config.training.objective == .dpo
        if pairs && config.data.trainOn == .all {
            throw TrainingError.unsupported("training.objective dpo compares the answers' log-probabilities; it needs data.train_on: assistant, not all")
        }
        if config.data.format == .judge {
            // Judge rows are verdicts after the assistant header: the judge is asked that way.
            if pairs {
                throw TrainingError.unsupported("data.format judge trains a yes/no classifier with training.objective sft; its rows are not preference pairs (dpo)")
            }
            if config.data.chainOfThought != .keep {
                throw TrainingError.unsupported("data.format judge needs data.chain_of_thought: keep: the trained judge reads its verdict right after the assistant header, with no think block (configs/judge.yaml)")
            }
        }
        if pairs && config.data.test != nil {
            throw TrainingError.unsupported("data.test is measured with the next-token loss; with training.objective dpo, evaluate the adapter with `thoughtcrime eval` instead")
        }
        let reporter = self.progress
        func load(_ path: String, pairs: Bool = pairs) throws -> [DatasetRow] {
            let loaded = try JSONLDataset.load(path: path, format: config.data.format, pairedAnswer: config.data.pairedAnswer,
                                               onBadRow: config.data.onBadRow, preferencePairs: pairs)
            if let first = loaded.skipped.first {
                reporter.message("skipped \(loaded.skipped.count) invalid rows of \(path) (first: line \(first.line): \(first.reason))")
            }
            return loaded.rows
        }
        // data.train, then data.mix: each file is split (when validation comes from a split)
        // before its weight repeats or subsamples its training rows, so no validation row is
        // trained on. Each file's rows render with its own chain_of_thought, and in a dpo run a
        // file may be rehearsed as plain rows (objective sft) beside the pairs (data.mix may set both).
        for (k, file) in config.data.mix.enumerated() where file.objective == .dpo && !pairs {
            throw TrainingError.unsupported("data.mix[\(k)] (\(file.path)) has objective dpo, but training.objective is sft: a file of preference pairs needs a dpo run")
        }
        let sources: [(path: String, weight: Double, chainOfThought: ChainOfThoughtSetting, pairs: Bool)] =
            [(config.data.train, 1.0, config.data.chainOfThought, pairs)]
            + config.data.mix.map { ($0.path, $0.weight, $0.chainOfThought ?? config.data.chainOfThought, pairs && $0.objective != .sft) }
        func rendererFor(_ chainOfThought: ChainOfThoughtSetting) -> ExampleRenderer {
            var data = config.data
            data.chainOfThought = chainOfThought
            return ExampleRenderer(tokenizer: tokenizer, template: renderer.template, data: data)
        }
        var trainRowCount = 0
        var examples: [TokenizedExample] = []
        var report = ExampleRenderer.Report()
        var validation: [TokenizedExample] = []
        if let validationPath = config.data.validation {
            validation = try renderer.renderAll(try load(validationPath), pairs: pairs, file: validationPath).examples
        }
        for (k, source) in sources.enumerated() {
            var rows = try load(source.path, pairs: source.pairs)
            let sourceRenderer = rendererFor(source.chainOfThought)
            if config.data.validation == nil && config.data.validationSplit > 0 {
                // A seeded, fixed split: the same rows are held out on every run and resume.
                var splitRNG = TrainingRNG(seed: UInt64(truncatingIfNeeded: config.run.seed) &+ 0x5eed &+ UInt64(k))
                var indices = Array(rows.indices)
                for i in stride(from: indices.count - 1, to: 0, by: -1) { indices.swapAt(i, splitRNG.nextIndex(below: i + 1)) }
                let held = Set(indices.prefix(max(1, Int((Double(rows.count) * config.data.validationSplit).rounded()))))
                validation += try sourceRenderer.renderAll(rows.enumerated().filter { held.contains($0.offset) }.map(\.element), pairs: source.pairs, file: source.path).examples
                rows = rows.enumerated().filter { !held.contains($0.offset) }.map(\.element)
            }
            let weighted = Trainer.weighted(rows, weight: source.weight, seed: UInt64(truncatingIfNeeded: config.run.seed) &+ 0x313 &+ UInt64(k))
            trainRowCount += weighted.count
            let rendered = try sourceRenderer.renderAll(weighted, pairs: source.pairs, file: source.path)
            examples += rendered.examples
            report.add(rendered.report)
        }
        guard !examples.isEmpty else {
            throw DataError.noUsableRows(file: sources.map(\.path).joined(separator: ", "), reason: "every row was dropped (\(report.droppedTooLong) longer than max_seq_len \(config.data.maxSeqLen), \(report.droppedNoTarget) without a target token)")
        }
        trainExamples = examples
        trainReport = report
        validationExamples = validation
        if let testPath = config.data.test {
            let tested = try renderer.renderAll(try load(testPath), pairs: false, file: testPath).examples
            testExamples = tested
            guard !tested.isEmpty else {
                throw DataError.noUsableRows(file: testPath, reason: "no row renders to an example with a target token within max_seq_len \(config.data.maxSeqLen)")
            }
        }
        if !config.data.mix.isEmpty {
            self.progress.message("training rows: " + sources.map {
                "\(($0.path as NSString).lastPathComponent) x\(ConfigYAML.formatShort($0.weight))"
                    + ($0.chainOfThought == config.data.chainOfThought ? "" : " (chain_of_thought \($0.chainOfThought.rawValue))")
                + ($0.pairs == pairs ? "" : " (objective sft)")
            }.joined(separator: ", ") + " = \(trainRowCount) rows")
        }

        let spec = try LoRASpec(
            rank: config.lora.rank, alpha: Float(config.lora.alpha), useRSLoRA: config.lora.useRSLoRA,
            dropout: Float(config.lora.dropout), targetModules: config.lora.targetModules.map(\.rawValue), layers: config.lora.layers)
        lora = try LoRAModel(attachingTo: loaded.model, spec: spec, seed: UInt64(truncatingIfNeeded: config.run.seed))
        if let adapterPath = config.model.adapter, loadsStartingAdapter {
            let start = try AdapterSource.load(path: adapterPath, modelConfig: loaded.model.config)
            for warning in start.warnings { self.progress.message(warning) }
            try Trainer.checkStartingAdapter(start.weights, fits: spec, layerCount: loaded.model.blocks.count, path: adapterPath)
            try lora.load(start.weights)
        }
        optimizer = try AdamW(
            parameters: lora.parameters, beta1: config.training.adamBeta1, beta2: config.training.adamBeta2,
            epsilon: config.training.adamEpsilon, weightDecay: config.training.weightDecay)
        planner = BatchPlanner(batchSize: config.training.batchSize, maxSeqLen: config.data.maxSeqLen, packing: config.data.packing,
                               padID: tokenizer.paddingID ?? tokenizer.eosID ?? 0, rowCapacity: config.data.maxSeqLen * (pairs ? 2 : 1))
        shuffler = EpochShuffler(seed: UInt64(truncatingIfNeeded: config.run.seed))
        rng = TrainingRNG(seed: UInt64(truncatingIfNeeded: config.run.seed) &+ 0xd20)

        // Steps per epoch follow from each epoch's order (packing makes the count order-dependent).
        let accumulation = config.training.gradientAccumulation
        var steps = 0
        for e in 0..<config.training.epochs {
            let micro = planner.plan(order: shuffler.order(epoch: e, count: examples.count), examples: examples).count
            steps += (micro + accumulation - 1) / accumulation
        }
        totalSteps = config.training.maxSteps ?? steps
        schedule = LearningRateSchedule(
            kind: config.training.lrScheduler, baseLR: config.training.learningRate, warmupSteps: config.training.warmupSteps,
            totalSteps: totalSteps, minLRRatio: config.training.minLRRatio)
        runDirectory = (config.run.outputDir as NSString).appendingPathComponent(config.run.name)
        order = shuffler.order(epoch: 0, count: examples.count)
        if pairs {
            // The adapter as it starts (zero, or the starting adapter) is DPO's reference model;
            // a resume recomputes the same values before loading its checkpoint.
            let rehearsed = examples.filter { $0.pairBoundary == nil }.count + validationExamples.filter { $0.pairBoundary == nil }.count
            self.progress.message("dpo: reference log-probabilities of \(examples.count) training and \(validationExamples.count) validation examples"
                                  + (rehearsed > 0 ? " (\(rehearsed) of them plain rows rehearsed by next-token loss)" : ""))
            trainReference = try pairLogProbabilities(examples)
            validationReference = try pairLogProbabilities(validationExamples)
        }
    }

    /// Refuses a starting adapter whose settings differ from `lora.*`, naming every difference.
    static func checkStartingAdapter(_ weights: LoRAWeights, fits spec: LoRASpec, layerCount: Int, path: String) throws {
        var differences: [String] = []
        func differ(_ key: String, adapter: String, config: String) {
            differences.append("\(key): adapter \(adapter), config \(config) (--set \(key)=\(adapter))")
        }
        if weights.rank != spec.rank { differ("lora.rank", adapter: "\(weights.rank)", config: "\(spec.rank)") }
        if weights.alpha != spec.alpha { differ("lora.alpha", adapter: "\(weights.alpha)", config: "\(spec.alpha)") }
        if weights.useRSLoRA != spec.useRSLoRA { differ("lora.use_rslora", adapter: "\(weights.useRSLoRA)", config: "\(spec.useRSLoRA)") }
        if Set(weights.targetModules) != Set(spec.targetModules) {
            differ("lora.target_modules", adapter: "[\(weights.targetModules.joined(separator: ","))]", config: "[\(spec.targetModules.joined(separator: ","))]")
        }
        let configLayers = spec.layers?.sorted() ?? Array(0..<layerCount)
        if weights.layers != configLayers {
            let adapterLayers = weights.layers == Array(0..<layerCount) ? "null" : "[\(weights.layers.map(String.init).joined(separator: ","))]"
            differ("lora.layers", adapter: adapterLayers, config: spec.layers == nil ? "null" : "\(configLayers)")
        }
        guard differences.isEmpty else {
            throw TrainingError.unsupported("model.adapter \(path) does not match the config's LoRA settings:\n  " + differences.joined(separator: "\n  "))
        }
    }

    static func defaultProgress(_ logging: RunConfig.LoggingSection) -> ProgressReporter {
        switch logging.progress {
        case .bar: return ProgressBar()
        case .plain: return PlainProgress(every: logging.every)
        case .auto: return isatty(STDERR_FILENO) == 1 ? ProgressBar() : PlainProgress(every: logging.every)
        }
    }

    // MARK: Running

    /// Trains until `totalSteps`, or until `stopAfter` steps have completed (then writes a
    /// checkpoint, as an interruption would), or until SIGINT/SIGTERM raise `InterruptFlag`.
    @discardableResult
    public func run(stopAfter: Int? = nil) throws -> TrainingSummary {
        // The run directory is claimed (by resume, or below by a new run) until this run ends.
        defer { runDirectoryLock = nil }
        if cluster.isRoot { try prepareRunDirectory() }
        cluster.barrier()
        InterruptFlag.setDeferring(true)
        defer { InterruptFlag.setDeferring(false) }
        let report = trainReport
        progress.message("training \(lora.adapters.count) adapters (\(lora.parameterCount) parameters) on \(trainExamples.count) examples, \(report.targetTokens) target tokens; \(report.truncated) truncated, \(report.droppedTooLong + report.droppedNoTarget) dropped; \(validationExamples.count) validation examples; \(totalSteps) steps")
        var firstLoss: Double?, firstValidation: Double?
        let started = Date()
        let stepsAtStart = step
        if step == 0, !validationExamples.isEmpty {
            // Can take a while on a big validation set: say what is happening, record it as
            // step 0, and start the tokens/s clock after it.
            progress.message("validation before training: \(validationExamples.count) examples")
            let loss = try validationLoss()
            firstValidation = loss
            let now = Date()
            try appendMetricsLine([
                "step": 0, "epoch": epoch, "val_loss": loss, "tokens_seen": tokensSeen,
                "elapsed_s": now.timeIntervalSince(started), "time": MetricsTime.string(now),
            ])
            progress.message(String(format: "step 0 validation loss %.4f (%@)", loss, formatDuration(now.timeIntervalSince(started))))
        }
        var tokensAtStart = tokensSeen
        var stepClock = Date()
        var interrupted = false
        var stoppedEarly = false
        while step < totalSteps {
            let (loss, gradNorm, tokens, preference) = try optimizerStep()
            step += 1
            tokensSeen += tokens
            lastLoss = loss
            if firstLoss == nil { firstLoss = loss }
            let stepEnded = Date()
            // Over the window since `stepClock`, up to this step's end: validation below comes after.
            let tokensPerSecond = Double(tokensSeen - tokensAtStart) / max(stepEnded.timeIntervalSince(stepClock), 1e-9)
            var validation: Double?
            let evalEvery = config.training.evalEvery
            var improved = false
            if !validationExamples.isEmpty && ((evalEvery > 0 && step % evalEvery == 0) || step == totalSteps) {
                let loss = try validationLoss()
                validation = loss
                lastValidationLoss = loss
                // Validation time is not training time: keep it out of the next steps' tokens/s window.
                stepClock += Date().timeIntervalSince(stepEnded)
                if let best = bestValidationLoss, loss >= best - config.training.earlyStoppingThreshold {
                    evaluationsWithoutImprovement += 1
                } else {
                    bestValidationLoss = loss
                    bestStep = step
                    evaluationsWithoutImprovement = 0
                    improved = true
                }
            }
            let stopsEarly = config.training.earlyStoppingPatience.map { evaluationsWithoutImprovement >= $0 } ?? false
            let now = Date()
            var metrics = StepMetrics(
                step: step, totalSteps: totalSteps, epoch: epoch, loss: loss, learningRate: schedule.learningRate(atStep: step - 1),
                gradNorm: gradNorm, tokensPerSecond: tokensPerSecond,
                tokensSeen: tokensSeen, validationLoss: validation, elapsedSeconds: now.timeIntervalSince(started),
                rewardAccuracy: preference?.accuracy, rewardMargin: preference?.margin, time: now)
            if cluster.isDistributed {
                metrics.reduceSeconds = lastReduceSeconds
                metrics.waitSeconds = lastWaitSeconds
                metrics.processes = cluster.size
            }
            if step % 10 == 0 { stepClock = now; tokensAtStart = tokensSeen }
            try appendMetrics(metrics)
            progress.step(metrics)
            // An interrupt reaches the ranks at different moments: they stop together.
            let stopRequested = cluster.any(InterruptFlag.isRaised) || (stopAfter.map { step >= $0 } ?? false)
            if step % config.checkpoint.every == 0 || step == totalSteps || stopRequested || stopsEarly || (improved && keepsBest) {
                try writeCheckpoint()
                if let path = lastCheckpointPath { progress.checkpointWritten(path, step: step) }
            }
            if improved && keepsBest { try markBest() }
            if stopsEarly && step < totalSteps {
                stoppedEarly = true
                progress.message(String(
                    format: "early stopping at step %d: the validation loss has not improved by more than %g for %d evaluations; best %.4f at step %d (%@)",
                    step, config.training.earlyStoppingThreshold, evaluationsWithoutImprovement, bestValidationLoss ?? .nan, bestStep ?? 0,
                    bestCheckpointPath ?? "-"))
                break
            }
            if stopRequested && step < totalSteps {
                interrupted = true
                break
            }
        }
        progress.finish()
        var testLoss: Double?
        if !interrupted && !testExamples.isEmpty {
            progress.message("test set: \(testExamples.count) examples")
            let loss = try nextTokenLoss(testExamples, batchLimit: nil)
            testLoss = loss
            let now = Date()
            try appendMetricsLine(["step": step, "epoch": epoch, "test_loss": loss, "tokens_seen": tokensSeen,
                                   "elapsed_s": now.timeIntervalSince(started), "time": MetricsTime.string(now)])
            progress.message(String(format: "test loss %.4f after step %d", loss, step))
        }
        // A page to look at beside metrics.jsonl; the run's results do not depend on it.
        if cluster.isRoot, let log = try? MetricsLog(runDirectory: runDirectory) {
            try? Data(LossCurves(runs: [log]).html(title: "Loss curves: \(log.name)").utf8)
                .write(to: URL(fileURLWithPath: (runDirectory as NSString).appendingPathComponent("curves.html")), options: .atomic)
        }
        if interrupted {
            progress.message("stopped after step \(step) of \(totalSteps); checkpoint \(lastCheckpointPath ?? "-"). Continue with: thoughtcrime resume \(runDirectory)")
        }
        _ = stepsAtStart
        return TrainingSummary(
            runDirectory: runDirectory, stepsCompleted: step, totalSteps: totalSteps, firstLoss: firstLoss, lastLoss: lastLoss,
            firstValidationLoss: firstValidation, lastValidationLoss: lastValidationLoss, interrupted: interrupted,
            lastCheckpoint: lastCheckpointPath, testLoss: testLoss, stoppedEarly: stoppedEarly, bestCheckpoint: keepsBest ? bestCheckpointPath : nil,
            bestValidationLoss: bestValidationLoss)
    }

    /// Micro-batches of the current epoch, from the cursor on.
    private func nextMicroBatch() throws -> MicroBatch {
        // The plan depends only on the epoch's order; build it once per epoch.
        if epochPlan.epoch != epoch || epochPlan.order != order {
            epochPlan = (epoch, order, planner.plan(order: order, examples: trainExamples))
        }
        var plan = epochPlan.plan
        var consumed = 0, index = 0
        while index < plan.count && consumed < cursor {
            consumed += plan[index].reduce(0) { $0 + $1.count }
            index += 1
        }
        if index >= plan.count {
            epoch += 1
            order = shuffler.order(epoch: epoch, count: trainExamples.count)
            cursor = 0
            plan = planner.plan(order: order, examples: trainExamples)
            epochPlan = (epoch, order, plan)
            index = 0
        }
        let rows = plan[index]
        cursor += rows.reduce(0) { $0 + $1.count }
        return try planner.assemble(rows, examples: trainExamples)
    }

    /// One optimiser step over `gradient_accumulation` micro-batches; the loss is the mean over
    /// all their target tokens, so every token weighs the same however batches are split.
    ///
    /// With objective dpo the loss is the mean DPO loss over the step's pairs, and the mean
    /// reward margin and the reward accuracy (over pairs that carry a preference; nil when
    /// none does) come back too.
    private func optimizerStep() throws -> (loss: Double, gradNorm: Double, tokens: Int, preference: (accuracy: Double?, margin: Double?)?) {
        let batches = try (0..<config.training.gradientAccumulation).map { _ in try nextMicroBatch() }
        let totalTargets = batches.reduce(0) { $0 + $1.targetCount }
        let totalPairs = batches.reduce(0) { $0 + $1.exampleCount }
        // Rehearsed plain rows (data.mix objective sft) count in the mean loss, not in the margin's.
        let preferencePairs = config.training.objective == .dpo
            ? batches.reduce(0) { $0 + $1.exampleRows.joined().filter { trainExamples[$0].pairBoundary != nil }.count } : 0
        optimizer.zeroGrad()
        var lossSum = 0.0, tokens = 0
        var preference: (accuracy: Double?, margin: Double?)?
        // Every rank draws every micro-batch's dropout seed, so the stream (and each batch's
        // mask) is the one a single process uses; each runs only its own share of the batches.
        let accumulator = GradientAccumulator(parameters: lora.parameters, cluster: cluster, microBatches: batches.count,
                                              ordered: config.training.gradientReduction == .ordered)
        // Each micro-batch's loss (and DPO margin) has its own entry, summed across processes
        // (one non-zero term each, so exactly) and then added up in micro-batch order: the
        // logged loss is bit for bit the one-process loss too.
        var losses = [Double](repeating: 0, count: batches.count), margins = losses
        var judged = 0, correct = 0
        for (i, batch) in batches.enumerated() where batch.targetCount > 0 {
            let seed = rng.next()
            guard ownsMicroBatch(i) else { continue }
            lora.setDropoutSeed(seed)
            if config.training.objective == .dpo {
                let r = try preferenceMicroStep(batch, weight: 1 / Double(max(totalPairs, 1)))
                losses[i] = r.loss / Double(max(totalPairs, 1))
                margins[i] = r.margin; judged += r.judged; correct += r.correct
            } else {
                let weight = Double(batch.targetCount) / Double(max(totalTargets, 1))
                losses[i] = try nextTokenMicroStep(batch, weight: weight) * weight
            }
            accumulator.take(microBatch: i)
            tokens += batch.realTokens
        }
        // Waiting for the slowest process is kept apart from moving the bytes.
        let waitStart = Date()
        if cluster.isDistributed { cluster.barrier() }
        lastWaitSeconds = Date().timeIntervalSince(waitStart)
        let reduceStart = Date()
        let sums = cluster.allreduceSum(losses + margins + [Double(tokens), Double(judged), Double(correct)])
        let n = batches.count
        lossSum = sums[0..<n].reduce(0, +)
        tokens = Int(sums[2 * n]); judged = Int(sums[2 * n + 1]); correct = Int(sums[2 * n + 2])
        if config.training.objective == .dpo {
            preference = (judged > 0 ? Double(correct) / Double(judged) : nil,
                          preferencePairs > 0 ? sums[n..<2 * n].reduce(0, +) / Double(preferencePairs) : nil)
        }
        accumulator.finish()
        lastReduceSeconds = Date().timeIntervalSince(reduceStart)
        guard lossSum.isFinite else { throw TrainingError.nonFinite(step: step + 1, quantity: "loss", lastCheckpoint: lastCheckpointPath) }
        let maxNorm = config.training.maxGradNorm
        let norm = maxNorm > 0 ? GradientClipping.clipGlobalNorm(lora.parameters, maxNorm: maxNorm) : GradientClipping.globalNorm(lora.parameters)
        guard norm.isFinite else { throw TrainingError.nonFinite(step: step + 1, quantity: "gradient norm", lastCheckpoint: lastCheckpointPath) }
        try optimizer.step(learningRate: schedule.learningRate(atStep: step))
        return (lossSum, norm, tokens, preference)
    }

    /// Forward and backward of the next-token loss over one micro-batch; adds `weight` times
    /// its gradient to the LoRA parameters' and returns the batch's mean loss per target token.
    func nextTokenMicroStep(_ batch: MicroBatch, weight: Double) throws -> Double {
        let tape = Tape()
        let ce = try loaded.model.loss(tape, tokens: batch.tokens, targets: batch.targets, layout: batch.layout)
        try tape.backward(ce.loss, seed: Float(weight))
        return Double(ce.loss.value[flat: 0])
    }

    /// Mean loss over validation target tokens (adapters active, no dropout, no gradients);
    /// with objective dpo, the mean DPO loss over the validation pairs.
    public func validationLoss() throws -> Double {
        if config.training.objective == .dpo { return try preferenceValidation().loss }
        return try nextTokenLoss(validationExamples, batchLimit: config.training.evalBatches)
    }

    /// Mean next-token loss over the target tokens of `examples` (no dropout, no gradients).
    func nextTokenLoss(_ examples: [TokenizedExample], batchLimit: Int?) throws -> Double {
        let order = Array(examples.indices)
        var plan = planner.plan(order: order, examples: examples)
        if let limit = batchLimit { plan = Array(plan.prefix(limit)) }
        var total = 0.0, targets = 0
        // Ranks take every size-th batch and add up what they measured.
        for (i, rows) in plan.enumerated() where i % cluster.size == cluster.rank {
            let batch = try planner.assemble(rows, examples: examples)
            guard batch.targetCount > 0 else { continue }
            let ce = try loaded.model.loss(Tape(recording: false), tokens: batch.tokens, targets: batch.targets, layout: batch.layout)
            total += Double(ce.loss.value[flat: 0]) * Double(batch.targetCount)
            targets += batch.targetCount
        }
        let sums = cluster.allreduceSum([total, Double(targets)])
        total = sums[0]; targets = Int(sums[1])
        return targets > 0 ? total / Double(targets) : .nan
    }
}

extension Trainer {
    /// `rows` taken `weight` times: whole copies for its integer part, then a seeded subset
    /// (kept in file order) for the fraction, so 0.5 is half the rows and 2.5 is two copies
    /// and a half. Weight 1 returns the rows unchanged.
    static func weighted(_ rows: [DatasetRow], weight: Double, seed: UInt64) -> [DatasetRow] {
        guard weight != 1, !rows.isEmpty else { return rows }
        let copies = Int(weight.rounded(.down))
        var out: [DatasetRow] = []
        for _ in 0..<copies { out += rows }
        let extra = Int((weight - Double(copies)) * Double(rows.count) + 0.5)
        if extra > 0 {
            var rng = TrainingRNG(seed: seed)
            var indices = Array(rows.indices)
            for i in stride(from: indices.count - 1, to: 0, by: -1) { indices.swapAt(i, rng.nextIndex(below: i + 1)) }
            out += indices.prefix(extra).sorted().map { rows[$0] }
        }
        return out
    }
}
