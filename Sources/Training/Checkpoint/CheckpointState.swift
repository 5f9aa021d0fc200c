import Tensors

/// Everything a run needs to continue exactly where it stopped; what a checkpoint file holds
/// (layout in docs/checkpoint-format.md).
///
/// Usage:
/// ```
/// let url = try CheckpointWriter(runDirectory: runDir, keepLast: 3).write(state)
/// let restored = try CheckpointReader.read(url)
/// ```
public struct CheckpointState {
    /// One adapter's matrices: A [rank, in], B [out, rank] (PEFT's lora_A / lora_B layout).
    public struct AdapterWeights {
        public var a: Tensor
        public var b: Tensor
        public init(a: Tensor, b: Tensor) { self.a = a; self.b = b }
    }

    /// AdamW's first and second moments for one adapter's A and B.
    public struct AdapterMoments {
        public var mA: Tensor
        public var vA: Tensor
        public var mB: Tensor
        public var vB: Tensor
        public init(mA: Tensor, vA: Tensor, mB: Tensor, vB: Tensor) {
            self.mA = mA; self.vA = vA; self.mB = mB; self.vB = vB
        }
    }

    public struct Adapter {
        public var rank: Int
        public var alpha: Double
        public var useRSLoRA: Bool
        /// Target projection names (q_proj, ...), in config order.
        public var targets: [String]
        /// Keyed by Hugging Face module path, e.g. `model.layers.0.self_attn.q_proj`.
        public var modules: [String: AdapterWeights]
        public init(rank: Int, alpha: Double, useRSLoRA: Bool, targets: [String], modules: [String: AdapterWeights]) {
            self.rank = rank; self.alpha = alpha; self.useRSLoRA = useRSLoRA; self.targets = targets; self.modules = modules
        }
    }

    public struct Optimizer {
        public var beta1: Double
        public var beta2: Double
        public var epsilon: Double
        public var weightDecay: Double
        /// AdamW steps taken (drives bias correction).
        public var step: Int
        /// Keyed like `Adapter.modules`.
        public var moments: [String: AdapterMoments]
        public init(beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double, step: Int,
                    moments: [String: AdapterMoments]) {
            self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
            self.step = step; self.moments = moments
        }
    }

    public struct Scheduler: Equatable {
        public var name: String
        public var warmupSteps: Int
        public var totalSteps: Int
        public var lastLR: Double
        public var minLRRatio: Double
        public var baseLR: Double
        public init(name: String, warmupSteps: Int, totalSteps: Int, lastLR: Double, minLRRatio: Double, baseLR: Double) {
            self.name = name; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
            self.lastLR = lastLR; self.minLRRatio = minLRRatio; self.baseLR = baseLR
        }
    }

    /// Where the data loader stands: the epoch's row order and the next position in it.
    public struct DataPosition: Equatable {
        public var order: [Int64]
        public var cursor: Int64
        public var epoch: Int64
        public init(order: [Int64], cursor: Int64, epoch: Int64) { self.order = order; self.cursor = cursor; self.epoch = epoch }
    }

    public struct Metrics: Equatable {
        public var lastLoss: Double?
        public var lastValidationLoss: Double?
        /// Early stopping and keep-best: the lowest validation loss so far, its step, and the
        /// evaluations since it (absent in checkpoints written before they were recorded).
        public var bestValidationLoss: Double?
        public var bestStep: Int?
        public var evaluationsWithoutImprovement: Int
        public init(lastLoss: Double? = nil, lastValidationLoss: Double? = nil, bestValidationLoss: Double? = nil,
                    bestStep: Int? = nil, evaluationsWithoutImprovement: Int = 0) {
            self.lastLoss = lastLoss; self.lastValidationLoss = lastValidationLoss
            self.bestValidationLoss = bestValidationLoss; self.bestStep = bestStep
            self.evaluationsWithoutImprovement = evaluationsWithoutImprovement
        }
    }

    /// Optimiser steps completed; names the file (step-000100.h5).
    public var step: Int
    public var epoch: Int
    public var tokensSeen: Int
    /// ISO 8601 UTC time of writing, e.g. 2025-01-31T12:00:00Z.
    public var createdUTC: String
    /// Identifies the base model the adapter was trained on; resume refuses a different one.
    public var baseFingerprint: String
    public var tokenizerFingerprint: String
    /// The resolved config YAML of the run.
    public var configYAML: String
    public var adapter: Adapter
    public var optimizer: Optimizer
    public var scheduler: Scheduler
    /// `TrainingRNG.stateWords`.
    public var rngState: [UInt64]
    public var data: DataPosition
    public var metrics: Metrics
    /// The `format_version` the file was written with (`CheckpointFormat.version` for a new one).
    public var formatVersion: Int64 = CheckpointFormat.version

    public init(
        step: Int, epoch: Int, tokensSeen: Int, createdUTC: String, baseFingerprint: String,
        tokenizerFingerprint: String, configYAML: String, adapter: Adapter, optimizer: Optimizer,
        scheduler: Scheduler, rngState: [UInt64], data: DataPosition, metrics: Metrics
    ) {
        self.step = step; self.epoch = epoch; self.tokensSeen = tokensSeen; self.createdUTC = createdUTC
        self.baseFingerprint = baseFingerprint; self.tokenizerFingerprint = tokenizerFingerprint
        self.configYAML = configYAML; self.adapter = adapter; self.optimizer = optimizer
        self.scheduler = scheduler; self.rngState = rngState; self.data = data; self.metrics = metrics
    }
}

/// Why a checkpoint could not be written, found or read.
public enum CheckpointError: Error, CustomStringConvertible {
    /// The file is not a ThoughtCrime checkpoint (format attribute missing or different).
    case notACheckpoint(file: String, found: String?)
    /// Written by a newer ThoughtCrime; upgrade to read it.
    case unsupportedVersion(file: String, version: Int64, supported: Int64)
    /// Present but unusable: a dataset or attribute is missing or inconsistent.
    case damaged(file: String, reason: String)
    /// Reading it in a child process crashed, hung or failed (`CheckpointIsolation`).
    case unsafeToRead(file: String, reason: String)
    /// The child reading it was stopped by a signal from outside (SIGTERM, SIGINT, SIGHUP): the
    /// file may be fine, so nothing falls back past it.
    case readerStopped(file: String, signal: String)
    case noCheckpoint(runDirectory: String)
    case invalidState(reason: String)
    case fileSystem(path: String, operation: String, reason: String)
    case hdf5(HDF5Error)

    public var description: String {
        switch self {
        case let .notACheckpoint(file, found):
            let what = found.map { "its format attribute is '\($0)'" } ?? "it has no format attribute"
            return "\(file) is not a ThoughtCrime checkpoint: \(what), expected '\(CheckpointFormat.name)'"
        case let .unsupportedVersion(file, version, supported):
            return "\(file) is checkpoint format version \(version); this build reads up to \(supported). Update ThoughtCrime to resume it."
        case let .damaged(file, reason):
            return "\(file) is a damaged checkpoint: \(reason)"
        case let .unsafeToRead(file, reason):
            return "\(file) cannot be read safely: \(reason). It is damaged, or was not written by ThoughtCrime; this process did not open it."
        case let .readerStopped(file, signal):
            return "\(file) was not read: the separate process reading it was stopped by \(signal) from outside. Nothing was skipped; run the command again"
        case let .noCheckpoint(runDirectory):
            return "\(runDirectory) holds no checkpoint (no 'latest' pointer and no step-*.h5 file)"
        case let .invalidState(reason):
            return "cannot write checkpoint: \(reason)"
        case let .fileSystem(path, operation, reason):
            return "\(path): \(operation) failed: \(reason)"
        case let .hdf5(error):
            return error.description
        }
    }
}

/// Names and version of the on-disk layout.
public enum CheckpointFormat {
    public static let name = "thoughtcrime-checkpoint"
    /// 2: `data.chain_of_thought: disabled` in the stored config means the empty think block is
    /// prompt, without loss (issue 28); version 1 files trained it, and resume keeps that.
    /// 3: every dataset carries a `checksum` attribute (`DatasetChecksum`), verified on reading.
    public static let version: Int64 = 3
    /// The pointer file in a run directory naming the newest complete checkpoint.
    public static let latestPointer = "latest"
    /// The pointer file naming the checkpoint of the lowest validation loss (`checkpoint.keep_best`).
    public static let bestPointer = "best"

    /// `step-000100.h5` for step 100 (more digits past a million steps).
    public static func fileName(step: Int) -> String {
        let digits = String(step)
        return "step-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".h5"
    }

    /// The step of a checkpoint file name, or nil for anything else (including `.h5.tmp`).
    public static func step(ofFileName name: String) -> Int? {
        guard name.hasPrefix("step-"), name.hasSuffix(".h5") else { return nil }
        let digits = name.dropFirst(5).dropLast(3)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        return Int(digits)
    }
}
