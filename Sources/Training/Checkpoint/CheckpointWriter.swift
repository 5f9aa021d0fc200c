import Foundation
import ModelFormats
import Tensors

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Writes checkpoints into a run directory so that a crash at any moment leaves the previous
/// checkpoint intact and findable.
///
/// Each write goes to `step-NNNNNN.h5.tmp`, is flushed, fsynced and renamed into place, and the
/// directory is fsynced; then the `latest` pointer is replaced the same way. Only after that are
/// checkpoints beyond the newest `keepLast` deleted (and temporary files of interrupted writes).
///
/// Usage: `let path = try CheckpointWriter(runDirectory: "checkpoints/run1", keepLast: 3).write(state)`
public struct CheckpointWriter {
    public let runDirectory: String
    public let keepLast: Int

    public init(runDirectory: String, keepLast: Int) throws {
        guard keepLast >= 1 else { throw CheckpointError.invalidState(reason: "keepLast is \(keepLast), must be >= 1") }
        self.runDirectory = runDirectory
        self.keepLast = keepLast
    }

    /// Writes `state` as `step-NNNNNN.h5`, points `latest` at it, prunes old checkpoints, and
    /// returns the new file's path.
    @discardableResult
    public func write(_ state: CheckpointState) throws -> String {
        try validate(state)
        do {
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError.fileSystem(path: runDirectory, operation: "create directory", reason: error.localizedDescription)
        }
        let name = CheckpointFormat.fileName(step: state.step)
        let finalPath = (runDirectory as NSString).appendingPathComponent(name)
        let temporaryPath = finalPath + ".tmp"
        try? FileManager.default.removeItem(atPath: temporaryPath)

        // A failed write (a full disk, a file size limit) must not leave a partial file behind:
        // it would hold the space the next attempt needs.
        do {
            let file = try HDF5File.create(path: temporaryPath)
            do {
                try CheckpointLayout.write(state, to: file)
                try file.flush()
                try file.close()
            } catch {
                file.abandon()
                throw error
            }
            try DurableFiles.fsync(path: temporaryPath)
            FaultInjection.point("checkpoint-temp-written")
            try DurableFiles.rename(temporaryPath, to: finalPath)
            FaultInjection.point("checkpoint-renamed")
        } catch {
            try? FileManager.default.removeItem(atPath: temporaryPath)
            if let error = error as? HDF5Error { throw CheckpointError.hdf5(error) }
            throw error
        }
        try DurableFiles.fsync(path: runDirectory)

        try DurableFiles.replaceTextFile(
            at: (runDirectory as NSString).appendingPathComponent(CheckpointFormat.latestPointer),
            with: name + "\n", directory: runDirectory, faultPoint: "latest")
        try prune(keeping: state.step)
        return finalPath
    }

    /// Points `best` at the checkpoint of `step` (already written), durably; `prune` keeps it.
    public func markBest(step: Int) throws {
        try DurableFiles.replaceTextFile(
            at: (runDirectory as NSString).appendingPathComponent(CheckpointFormat.bestPointer),
            with: CheckpointFormat.fileName(step: step) + "\n", directory: runDirectory)
    }

    /// The step the `best` pointer names, if any.
    var bestStep: Int? {
        let pointer = (runDirectory as NSString).appendingPathComponent(CheckpointFormat.bestPointer)
        return (try? InputFile.readText(pointer, limit: 4096)).flatMap {
            CheckpointFormat.step(ofFileName: $0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// Deletes all but the newest `keepLast` checkpoints (never `current`, nor the one `best`
    /// names) and leftover `.tmp` files.
    private func prune(keeping current: Int) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []
        let steps = names.compactMap(CheckpointFormat.step(ofFileName:)).sorted(by: >)
        let best = bestStep
        for step in steps.dropFirst(keepLast) where step != current && step != best {
            try? FileManager.default.removeItem(
                atPath: (runDirectory as NSString).appendingPathComponent(CheckpointFormat.fileName(step: step)))
        }
        for name in names where name.hasPrefix("step-") && name.hasSuffix(".h5.tmp") {
            try? FileManager.default.removeItem(atPath: (runDirectory as NSString).appendingPathComponent(name))
        }
    }

    private func validate(_ state: CheckpointState) throws {
        guard state.step >= 0 else { throw CheckpointError.invalidState(reason: "step is \(state.step)") }
        guard Set(state.optimizer.moments.keys) == Set(state.adapter.modules.keys) else {
            let missing = Set(state.adapter.modules.keys).symmetricDifference(state.optimizer.moments.keys).sorted()
            throw CheckpointError.invalidState(
                reason: "adapter and optimizer moments cover different modules: \(missing.joined(separator: ", "))")
        }
        for (module, weights) in state.adapter.modules {
            guard let moments = state.optimizer.moments[module] else { continue }
            for (name, moment, weight) in [("m_A", moments.mA, weights.a), ("v_A", moments.vA, weights.a),
                                           ("m_B", moments.mB, weights.b), ("v_B", moments.vB, weights.b)]
            where moment.shape != weight.shape {
                throw CheckpointError.invalidState(
                    reason: "\(module): \(name) has shape \(moment.shape), its weight has \(weight.shape)")
            }
            if module.contains("/") || module.isEmpty {
                throw CheckpointError.invalidState(reason: "module path '\(module)' cannot be an HDF5 group name")
            }
        }
    }
}

/// fsync and rename with errors that name the file, for crash-safe replacement.
enum DurableFiles {
    /// Flushes a file's (or a directory's entries') data to the disk.
    static func fsync(path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw error(path, "open for fsync") }
        defer { close(descriptor) }
        #if canImport(Glibc)
        guard Glibc.fsync(descriptor) == 0 else { throw error(path, "fsync") }
        #else
        guard Darwin.fsync(descriptor) == 0 else { throw error(path, "fsync") }
        #endif
    }

    /// POSIX rename: atomic replacement within one file system.
    static func rename(_ source: String, to destination: String) throws {
        #if canImport(Glibc)
        let status = Glibc.rename(source, destination)
        #else
        let status = Darwin.rename(source, destination)
        #endif
        guard status == 0 else { throw error(source, "rename to \(destination)") }
    }

    /// Replaces a small text file atomically: write a .tmp, fsync it, rename, fsync the directory.
    static func replaceTextFile(at path: String, with text: String, directory: String, faultPoint: String? = nil) throws {
        let temporary = path + ".tmp"
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
            try fsync(path: temporary)
            if let faultPoint { FaultInjection.point(faultPoint + "-temp-written") }
            try rename(temporary, to: path)
            if let faultPoint { FaultInjection.point(faultPoint + "-renamed") }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            if let error = error as? CheckpointError { throw error }
            let reason = (error as NSError).userInfo[NSUnderlyingErrorKey].map { "\($0)" } ?? error.localizedDescription
            throw CheckpointError.fileSystem(path: temporary, operation: "write", reason: reason)
        }
        try fsync(path: directory)
    }

    private static func error(_ path: String, _ operation: String) -> CheckpointError {
        .fileSystem(path: path, operation: operation, reason: String(cString: strerror(errno)))
    }
}
