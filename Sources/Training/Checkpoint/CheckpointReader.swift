import Foundation
import ModelFormats
import Tensors

/// Finds and reads checkpoints written by `CheckpointWriter`.
///
/// Usage:
/// ```
/// let path = try CheckpointReader.latestCheckpoint(in: "checkpoints/run1")
/// let state = try CheckpointReader.read(path)
/// ```
public enum CheckpointReader {
    private static let isolationLock = NSLock()
    nonisolated(unsafe) private static var isolationSetting: CheckpointIsolation?

    /// When set, every `read` first runs the whole read in a child process, so that a file
    /// that crashes or hangs the HDF5 library costs an error, not this process. The CLI sets
    /// it at start; library users that read files they did not write should too.
    public static var isolation: CheckpointIsolation? {
        get { isolationLock.lock(); defer { isolationLock.unlock() }; return isolationSetting }
        set { isolationLock.lock(); defer { isolationLock.unlock() }; isolationSetting = newValue }
    }

    /// Reads a checkpoint file. Refuses files that are not HDF5, lack the ThoughtCrime format
    /// attribute, carry a newer format version, or miss any part of the layout; with
    /// `isolation` set, also files whose reading crashes or hangs a child process.
    public static func read(_ path: String) throws -> CheckpointState {
        if let isolation { try isolation.check(path) }
        return try readInThisProcess(path)
    }

    /// `read` without isolation: what the child process of `CheckpointIsolation` runs.
    public static func readInThisProcess(_ path: String) throws -> CheckpointState {
        let file: HDF5File
        do {
            file = try HDF5File.open(path: path)
        } catch let HDF5Error.cannotOpen(_, reason) {
            throw CheckpointError.damaged(
                file: path, reason: "not readable as HDF5 (\(reason)); it may be truncated or not a checkpoint")
        }
        defer { try? file.close() }
        let state: CheckpointState
        do {
            state = try CheckpointLayout.read(from: file)
        } catch let error as HDF5Error {
            throw CheckpointError.damaged(file: path, reason: error.description)
        }
        try state.validate(file: path, fileStep: CheckpointFormat.step(ofFileName: (path as NSString).lastPathComponent))
        // After the values' own checks (whose messages are more specific): a changed value that
        // is still in range fails here.
        if state.formatVersion >= 3 {
            do {
                try DatasetChecksum.verify(state, in: file)
            } catch let error as HDF5Error {
                throw CheckpointError.damaged(file: path, reason: error.description)
            }
        }
        return state
    }

    /// A checkpoint read from a run directory, and the newer ones passed over on the way.
    public struct LatestReadable {
        public var path: String
        public var state: CheckpointState
        /// Newer checkpoints that could not be read, newest first, each with its error.
        public var skipped: [(path: String, error: CheckpointError)]

        /// One line per skipped checkpoint, for the user.
        public var warnings: [String] {
            skipped.map { "warning: skipped \($0.error); using \(path) instead" }
        }
    }

    /// The newest checkpoint in `runDirectory` that reads and validates: the `latest` pointer's
    /// file first, then every `step-*.h5` from the highest step down. A damaged newest
    /// checkpoint thus falls back to the previous one `checkpoint.keep_last` kept. A checkpoint
    /// of a newer format version stops the search (an older one would silently lose progress).
    ///
    /// Usage: `let latest = try CheckpointReader.readLatest(in: "checkpoints/run1")`
    public static func readLatest(in runDirectory: String) throws -> LatestReadable {
        var candidates: [String] = []
        if let pointed = try? latestCheckpoint(in: runDirectory) { candidates.append(pointed) }
        for c in checkpoints(in: runDirectory).reversed() where !candidates.contains(c.path) { candidates.append(c.path) }
        guard !candidates.isEmpty else { throw CheckpointError.noCheckpoint(runDirectory: runDirectory) }
        var skipped: [(path: String, error: CheckpointError)] = []
        for path in candidates {
            do {
                return LatestReadable(path: path, state: try read(path), skipped: skipped)
            } catch let error as CheckpointError {
                if case .unsupportedVersion = error { throw error }
                if case .readerStopped = error { throw error }
                skipped.append((path, error))
            }
        }
        throw skipped[0].error
    }

    /// The newest complete checkpoint in `runDirectory`: the file the `latest` pointer names, or,
    /// when the pointer is missing or stale (a crash between the two renames), the highest
    /// `step-*.h5`. Temporary `.h5.tmp` files of interrupted writes are never chosen.
    public static func latestCheckpoint(in runDirectory: String) throws -> String {
        let pointer = (runDirectory as NSString).appendingPathComponent(CheckpointFormat.latestPointer)
        if let text = try? InputFile.readText(pointer, limit: 4096) {
            let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
            let path = (runDirectory as NSString).appendingPathComponent(name)
            if CheckpointFormat.step(ofFileName: name) != nil, FileManager.default.fileExists(atPath: path) {
                return path
            }
        }
        guard let newest = checkpoints(in: runDirectory).last else {
            throw CheckpointError.noCheckpoint(runDirectory: runDirectory)
        }
        return newest.path
    }

    /// Complete checkpoint files in `runDirectory`, oldest step first.
    public static func checkpoints(in runDirectory: String) -> [(step: Int, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []
        return names.compactMap { name in
            CheckpointFormat.step(ofFileName: name).map { ($0, (runDirectory as NSString).appendingPathComponent(name)) }
        }.sorted { $0.step < $1.step }
    }
}

/// The mapping between `CheckpointState` and the HDF5 layout of docs/checkpoint-format.md.
enum CheckpointLayout {
    static func write(_ state: CheckpointState, to file: HDF5File) throws {
        try file.setAttribute("format", .string(CheckpointFormat.name))
        try file.setAttribute("format_version", .int64(CheckpointFormat.version))
        try file.setAttribute("step", .int64(Int64(state.step)))
        try file.setAttribute("epoch", .int64(Int64(state.epoch)))
        try file.setAttribute("tokens_seen", .int64(Int64(state.tokensSeen)))
        try file.setAttribute("created_utc", .string(state.createdUTC))
        try file.setAttribute("base_fingerprint", .string(state.baseFingerprint))
        try file.setAttribute("tokenizer_fingerprint", .string(state.tokenizerFingerprint))

        try file.writeString(state.configYAML, at: "/config")
        try DatasetChecksum.stamp(file, "/config", DatasetChecksum.of(state.configYAML))

        let adapter = state.adapter
        try file.createGroup("/adapter")
        try file.setAttribute("rank", .int64(Int64(adapter.rank)), on: "/adapter")
        try file.setAttribute("alpha", .double(adapter.alpha), on: "/adapter")
        try file.setAttribute("use_rslora", .bool(adapter.useRSLoRA), on: "/adapter")
        try file.setAttribute("targets", .string(adapter.targets.joined(separator: ",")), on: "/adapter")
        for (module, weights) in adapter.modules {
            try file.writeTensor(weights.a, at: "/adapter/\(module)/lora_A")
            try file.writeTensor(weights.b, at: "/adapter/\(module)/lora_B")
            try DatasetChecksum.stamp(file, "/adapter/\(module)/lora_A", DatasetChecksum.of(weights.a))
            try DatasetChecksum.stamp(file, "/adapter/\(module)/lora_B", DatasetChecksum.of(weights.b))
        }

        let optimizer = state.optimizer
        try file.createGroup("/optimizer")
        try file.setAttribute("beta1", .double(optimizer.beta1), on: "/optimizer")
        try file.setAttribute("beta2", .double(optimizer.beta2), on: "/optimizer")
        try file.setAttribute("eps", .double(optimizer.epsilon), on: "/optimizer")
        try file.setAttribute("weight_decay", .double(optimizer.weightDecay), on: "/optimizer")
        try file.setAttribute("step", .int64(Int64(optimizer.step)), on: "/optimizer")
        for (module, moments) in optimizer.moments {
            try file.writeTensor(moments.mA, at: "/optimizer/\(module)/m_A")
            try file.writeTensor(moments.vA, at: "/optimizer/\(module)/v_A")
            try file.writeTensor(moments.mB, at: "/optimizer/\(module)/m_B")
            try file.writeTensor(moments.vB, at: "/optimizer/\(module)/v_B")
            for (name, t) in [("m_A", moments.mA), ("v_A", moments.vA), ("m_B", moments.mB), ("v_B", moments.vB)] {
                try DatasetChecksum.stamp(file, "/optimizer/\(module)/\(name)", DatasetChecksum.of(t))
            }
        }

        let scheduler = state.scheduler
        try file.createGroup("/scheduler")
        try file.setAttribute("name", .string(scheduler.name), on: "/scheduler")
        try file.setAttribute("warmup", .int64(Int64(scheduler.warmupSteps)), on: "/scheduler")
        try file.setAttribute("total_steps", .int64(Int64(scheduler.totalSteps)), on: "/scheduler")
        try file.setAttribute("last_lr", .double(scheduler.lastLR), on: "/scheduler")
        try file.setAttribute("min_lr_ratio", .double(scheduler.minLRRatio), on: "/scheduler")
        try file.setAttribute("base_lr", .double(scheduler.baseLR), on: "/scheduler")

        try file.writeUInt64s(state.rngState, at: "/rng")
        try DatasetChecksum.stamp(file, "/rng", DatasetChecksum.of(state.rngState))

        try file.writeInt64s(state.data.order, at: "/data/order")
        try file.writeInt64s([state.data.cursor], at: "/data/cursor")
        try file.writeInt64s([state.data.epoch], at: "/data/epoch")
        try DatasetChecksum.stamp(file, "/data/order", DatasetChecksum.of(state.data.order))
        try DatasetChecksum.stamp(file, "/data/cursor", DatasetChecksum.of([state.data.cursor]))
        try DatasetChecksum.stamp(file, "/data/epoch", DatasetChecksum.of([state.data.epoch]))

        try file.createGroup("/metrics")
        if let loss = state.metrics.lastLoss { try file.setAttribute("last_loss", .double(loss), on: "/metrics") }
        if let loss = state.metrics.lastValidationLoss {
            try file.setAttribute("last_val_loss", .double(loss), on: "/metrics")
        }
        if let best = state.metrics.bestValidationLoss, let step = state.metrics.bestStep {
            try file.setAttribute("best_val_loss", .double(best), on: "/metrics")
            try file.setAttribute("best_step", .int64(Int64(step)), on: "/metrics")
        }
        try file.setAttribute("evals_without_improvement", .int64(Int64(state.metrics.evaluationsWithoutImprovement)), on: "/metrics")
    }

    static func read(from file: HDF5File) throws -> CheckpointState {
        let path = file.path
        guard case let .string(format)? = try? file.attribute("format"), format == CheckpointFormat.name else {
            let found: String?
            switch try? file.attribute("format") {
            case let .string(s)?: found = s
            case let value?: found = value.description
            case nil: found = nil
            }
            throw CheckpointError.notACheckpoint(file: path, found: found)
        }
        let version = try int(file, "format_version", on: "/")
        guard version >= 1 else {
            throw CheckpointError.damaged(file: path, reason: "format_version is \(version); versions start at 1")
        }
        guard version <= CheckpointFormat.version else {
            throw CheckpointError.unsupportedVersion(file: path, version: version, supported: CheckpointFormat.version)
        }

        var modules: [String: CheckpointState.AdapterWeights] = [:]
        for module in try file.children(of: "/adapter") {
            modules[module] = .init(a: try file.readTensor(at: "/adapter/\(module)/lora_A"),
                                    b: try file.readTensor(at: "/adapter/\(module)/lora_B"))
        }
        var moments: [String: CheckpointState.AdapterMoments] = [:]
        for module in try file.children(of: "/optimizer") {
            let group = "/optimizer/\(module)"
            moments[module] = .init(mA: try file.readTensor(at: "\(group)/m_A"), vA: try file.readTensor(at: "\(group)/v_A"),
                                    mB: try file.readTensor(at: "\(group)/m_B"), vB: try file.readTensor(at: "\(group)/v_B"))
        }
        let targets = try string(file, "targets", on: "/adapter")
        let metricNames = try file.attributeNames(on: "/metrics")

        var state = CheckpointState(
            step: Int(try int(file, "step", on: "/")),
            epoch: Int(try int(file, "epoch", on: "/")),
            tokensSeen: Int(try int(file, "tokens_seen", on: "/")),
            createdUTC: try string(file, "created_utc", on: "/"),
            baseFingerprint: try string(file, "base_fingerprint", on: "/"),
            tokenizerFingerprint: try string(file, "tokenizer_fingerprint", on: "/"),
            configYAML: try file.readString(at: "/config"),
            adapter: .init(
                rank: Int(try int(file, "rank", on: "/adapter")), alpha: try double(file, "alpha", on: "/adapter"),
                useRSLoRA: try bool(file, "use_rslora", on: "/adapter"),
                targets: targets.isEmpty ? [] : targets.split(separator: ",").map(String.init), modules: modules),
            optimizer: .init(
                beta1: try double(file, "beta1", on: "/optimizer"), beta2: try double(file, "beta2", on: "/optimizer"),
                epsilon: try double(file, "eps", on: "/optimizer"),
                weightDecay: try double(file, "weight_decay", on: "/optimizer"),
                step: Int(try int(file, "step", on: "/optimizer")), moments: moments),
            scheduler: .init(
                name: try string(file, "name", on: "/scheduler"),
                warmupSteps: Int(try int(file, "warmup", on: "/scheduler")),
                totalSteps: Int(try int(file, "total_steps", on: "/scheduler")),
                lastLR: try double(file, "last_lr", on: "/scheduler"),
                minLRRatio: try double(file, "min_lr_ratio", on: "/scheduler"),
                baseLR: try double(file, "base_lr", on: "/scheduler")),
            rngState: try file.readUInt64s(at: "/rng"),
            data: .init(order: try file.readInt64s(at: "/data/order"),
                        cursor: try single(file, "/data/cursor"), epoch: try single(file, "/data/epoch")),
            metrics: .init(
                lastLoss: metricNames.contains("last_loss") ? try double(file, "last_loss", on: "/metrics") : nil,
                lastValidationLoss: metricNames.contains("last_val_loss")
                    ? try double(file, "last_val_loss", on: "/metrics") : nil,
                bestValidationLoss: metricNames.contains("best_val_loss") ? try double(file, "best_val_loss", on: "/metrics") : nil,
                bestStep: metricNames.contains("best_step") ? Int(try int(file, "best_step", on: "/metrics")) : nil,
                evaluationsWithoutImprovement: metricNames.contains("evals_without_improvement")
                    ? Int(try int(file, "evals_without_improvement", on: "/metrics")) : 0))
        state.formatVersion = version
        return state
    }

    private static func mismatch(_ file: HDF5File, _ object: String, _ name: String, _ expected: String,
                                 _ found: HDF5AttributeValue) -> HDF5Error {
        .wrongDataType(file: file.path, object: "\(object)@\(name)", expected: expected, found: found.description)
    }
    private static func int(_ file: HDF5File, _ name: String, on object: String) throws -> Int64 {
        let value = try file.attribute(name, on: object)
        guard case let .int64(i) = value else { throw mismatch(file, object, name, "an integer", value) }
        return i
    }
    private static func double(_ file: HDF5File, _ name: String, on object: String) throws -> Double {
        switch try file.attribute(name, on: object) {
        case let .double(d): return d
        case let .int64(i): return Double(i)
        case let value: throw mismatch(file, object, name, "a number", value)
        }
    }
    private static func string(_ file: HDF5File, _ name: String, on object: String) throws -> String {
        let value = try file.attribute(name, on: object)
        guard case let .string(s) = value else { throw mismatch(file, object, name, "a string", value) }
        return s
    }
    private static func bool(_ file: HDF5File, _ name: String, on object: String) throws -> Bool {
        let value = try file.attribute(name, on: object)
        guard case let .bool(b) = value else { throw mismatch(file, object, name, "a boolean", value) }
        return b
    }
    private static func single(_ file: HDF5File, _ dataset: String) throws -> Int64 {
        let values = try file.readInt64s(at: dataset)
        guard values.count == 1, let value = values.first else {
            throw HDF5Error.wrongDataType(file: file.path, object: dataset, expected: "one integer",
                                          found: "\(values.count) integers")
        }
        return value
    }
}
