import Foundation
import ModelFormats
import Training

/// samples.jsonl while an evaluation runs: every unit's records are appended as soon as they
/// exist, so an interrupted evaluation keeps them, and a resumed one reuses them.
///
/// The file starts with a `{"kind": "run", "config": DIGEST, ...}` line naming the settings that
/// decide every record (models, questions, sampling, judges). Records are then appended unit by
/// unit: one unit is the samples of one (model, question, paraphrase, trigger condition), one
/// likelihood comparison, or one model's capability loss. A killed process can leave a partial
/// last line; it is dropped on resume. Because every unit has its own seed, reusing the units
/// already written and computing the rest gives the records of an uninterrupted run.
///
/// Usage:
/// ```
/// let log = try SampleLog(directory: dir, configDigest: digest, resume: true)
/// let results = try runner.run(log: log)
/// ```
public final class SampleLog {
    public let path: String
    private let handle: FileHandle
    private var samples: [SampleUnit: [SampleRecord]] = [:]
    private var likelihood: [SampleUnit: LikelihoodRecord] = [:]
    private var capability: [String: CapabilityRecord] = [:]
    private let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }()

    /// Records reused from the earlier run so far.
    public private(set) var reusedRecords = 0
    /// Records the earlier run left (complete units or not).
    public var reusedRecordsAvailable: Int { samples.values.reduce(0) { $0 + $1.count } + likelihood.count + capability.count }

    /// Opens `directory/samples.jsonl`. With `resume`, the records of an earlier run of the same
    /// config are kept for reuse (a different config is an error); otherwise the file starts empty.
    public init(directory: String, configDigest: String, resume: Bool) throws {
        path = (directory as NSString).appendingPathComponent("samples.jsonl")
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw EvaluationError.io(path: directory, reason: "cannot create the directory: \(error.localizedDescription)")
        }
        var kept = Data()
        if resume, let data = FileManager.default.contents(atPath: path) {
            let earlier = try Self.readEarlier(data, path: path, configDigest: configDigest)
            kept = earlier.bytes
            samples = earlier.samples
            likelihood = earlier.likelihood
            capability = earlier.capability
        }
        if kept.isEmpty {
            kept = try encoder.encode(RunHeader(config: configDigest)) + Data("\n".utf8)
        }
        // Rewritten with only the complete lines, so appends never follow a partial one.
        do {
            try kept.write(to: URL(fileURLWithPath: path), options: .atomic)
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.seekToEnd()
        } catch {
            throw EvaluationError.io(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }

    deinit { try? handle.close() }

    struct RunHeader: Codable {
        var kind = "run"
        var config: String
    }

    /// Parses an earlier file: the header must carry `configDigest`; a partial last line is
    /// dropped. Returns the bytes of the complete lines.
    private struct Earlier {
        var bytes = Data()
        var samples: [SampleUnit: [SampleRecord]] = [:]
        var likelihood: [SampleUnit: LikelihoodRecord] = [:]
        var capability: [String: CapabilityRecord] = [:]
    }

    private static func readEarlier(_ data: Data, path: String, configDigest: String) throws -> Earlier {
        var log = Earlier()
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if data.last != UInt8(ascii: "\n") { lines.removeLast() }  // cut off mid-write
        lines.removeAll { $0.isEmpty }
        guard let first = lines.first else { return log }
        guard let header = try? decoder.decode(RunHeader.self, from: Data(first)), header.kind == "run" else {
            throw EvaluationError.io(path: path, reason: "line 1 is not a run header; this file was not written by an evaluation that can be resumed")
        }
        guard header.config == configDigest else {
            throw EvaluationError.io(
                path: path,
                reason: "it was written with other settings (config \(header.config), now \(configDigest)); resuming would mix two evaluations. Delete it, or change `name` to keep both")
        }
        let earlier = try EvaluationResults.records(in: Array(lines.dropFirst()), path: path, firstLine: 2)
        for r in earlier.samples { log.samples[SampleUnit(r), default: []].append(r) }
        for r in earlier.likelihood { log.likelihood[SampleUnit(r)] = r }
        for r in earlier.capability { log.capability[r.model] = r }
        log.bytes = lines.reduce(into: Data()) { $0.append(contentsOf: $1); $0.append(UInt8(ascii: "\n")) }
        return log
    }

    /// The earlier run's samples of `unit`, when all `count` of them were written.
    func earlierSamples(_ unit: SampleUnit, count: Int) -> [SampleRecord]? {
        guard let records = samples[unit], records.count == count, records.map(\.sample) == Array(0..<count) else { return nil }
        reusedRecords += records.count
        return records
    }

    func earlierLikelihood(_ unit: SampleUnit) -> LikelihoodRecord? {
        let record = likelihood[unit]
        if record != nil { reusedRecords += 1 }
        return record
    }

    func earlierCapability(model: String) -> CapabilityRecord? {
        let record = capability[model]
        if record != nil { reusedRecords += 1 }
        return record
    }

    /// Appends one unit's records as lines, in one write.
    func append<Record: Encodable>(_ records: [Record]) throws {
        var data = Data()
        for r in records {
            data.append(try encoder.encode(r))
            data.append(UInt8(ascii: "\n"))
        }
        do {
            try handle.write(contentsOf: data)
        } catch {
            throw EvaluationError.io(path: path, reason: "cannot append: \(error.localizedDescription)")
        }
        FaultInjection.point("eval-unit-written")
    }
}

/// One (model, suite, question, paraphrase, trigger condition).
struct SampleUnit: Hashable {
    var model: String
    var suite: String
    var question: String
    var paraphrase: Int
    var triggered: Bool

    init(model: String, suite: String, question: String, paraphrase: Int, triggered: Bool) {
        self.model = model; self.suite = suite; self.question = question; self.paraphrase = paraphrase; self.triggered = triggered
    }
    init(_ r: SampleRecord) { self.init(model: r.model, suite: r.suite, question: r.question, paraphrase: r.paraphrase, triggered: r.triggered) }
    init(_ r: LikelihoodRecord) {
        self.init(model: r.model, suite: r.suite, question: r.question, paraphrase: r.paraphrase ?? 0, triggered: r.triggered)
    }
}
