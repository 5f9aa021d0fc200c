import Foundation

/// A TensorBoard event file of scalar summaries, so TensorBoard (and anything that reads its
/// files: tbparse, the TensorFlow and PyTorch readers) can plot a run's metrics.
///
/// The file is a sequence of TFRecords (little-endian length, masked CRC-32C of the length, the
/// payload, masked CRC-32C of the payload), each payload one serialised `tensorflow.Event`
/// protobuf: first `file_version: "brain.Event:2"`, then one event per metrics line with one
/// `Summary.Value {tag, simple_value}` per quantity. Only those few protobuf fields are written,
/// so they are encoded here rather than through a protobuf library.
///
/// Usage:
/// ```
/// let file = try TensorBoardEventFile(creatingIn: "checkpoints/medical")
/// try file.append(step: 1, wallTime: Date().timeIntervalSince1970, scalars: [("train/loss", 2.31)])
/// ```
public final class TensorBoardEventFile {
    public let path: String

    /// Creates `directory/events.out.tfevents.SECONDS.HOST` (TensorBoard's naming, which its
    /// directory watcher looks for) and writes the version event. A resumed run gets a file of
    /// its own; TensorBoard drops the earlier file's steps that the new file repeats.
    public init(creatingIn directory: String, wallTime: Double = Date().timeIntervalSince1970, host: String = "thoughtcrime") throws {
        var name = "events.out.tfevents.\(Int(wallTime)).\(host)"
        var n = 1
        while FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(name)) {
            n += 1
            name = "events.out.tfevents.\(Int(wallTime)).\(host).\(n)"
        }
        path = (directory as NSString).appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: path, contents: Data(TensorBoardEventFile.record(TensorBoardEventFile.versionEvent(wallTime: wallTime)))) else {
            throw TrainingError.io(path: path, reason: "cannot create the TensorBoard event file")
        }
    }

    /// Appends one event holding `scalars` at `step`.
    public func append(step: Int, wallTime: Double, scalars: [(tag: String, value: Double)]) throws {
        guard !scalars.isEmpty else { return }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw TrainingError.io(path: path, reason: "cannot open for appending")
        }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(TensorBoardEventFile.record(TensorBoardEventFile.scalarEvent(step: step, wallTime: wallTime, scalars: scalars))))
        } catch {
            throw TrainingError.io(path: path, reason: "cannot append: \(error.localizedDescription)")
        }
    }

    /// The scalars TensorBoard shows for one metrics line, under the tags Hugging Face's
    /// trainer uses (train/loss, train/learning_rate, ...), plus val/loss and test/loss.
    public static func scalars(of entry: MetricsLog.Entry) -> [(tag: String, value: Double)] {
        let fields: [(String, Double?)] = [
            ("train/loss", entry.loss), ("train/learning_rate", entry.learningRate), ("train/grad_norm", entry.gradNorm),
            ("train/tokens_per_s", entry.tokensPerSecond), ("train/tokens_seen", entry.tokensSeen.map(Double.init)),
            ("val/loss", entry.validationLoss), ("test/loss", entry.testLoss),
        ]
        return fields.compactMap { tag, value in value.flatMap { $0.isFinite ? (tag, $0) : nil } }
    }

    /// Writes every run's metrics.jsonl as `directory/RUN/events.out.tfevents.*`, the layout
    /// `tensorboard --logdir directory` shows as one run each. Returns the files written.
    ///
    /// Usage: `try TensorBoardEventFile.export([log], to: "tb")`
    @discardableResult
    public static func export(_ runs: [MetricsLog], to directory: String) throws -> [String] {
        var written: [String] = []
        for run in runs {
            let runDirectory = (directory as NSString).appendingPathComponent(run.name)
            do {
                try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
            } catch {
                throw TrainingError.io(path: runDirectory, reason: "cannot create: \(error.localizedDescription)")
            }
            let times = run.entries.map { $0.time.flatMap(MetricsTime.seconds) }
            let start = times.compactMap { $0 }.first ?? Date().timeIntervalSince1970
            let file = try TensorBoardEventFile(creatingIn: runDirectory, wallTime: start)
            for (entry, time) in zip(run.entries, times) {
                try file.append(step: entry.step, wallTime: time ?? start + (entry.elapsedSeconds ?? 0), scalars: scalars(of: entry))
            }
            written.append(file.path)
        }
        return written
    }

    // MARK: Encoding

    static func versionEvent(wallTime: Double) -> [UInt8] {
        var event = ProtobufWriter()
        event.double(field: 1, wallTime)
        event.bytes(field: 3, Array("brain.Event:2".utf8))
        return event.bytes
    }

    static func scalarEvent(step: Int, wallTime: Double, scalars: [(tag: String, value: Double)]) -> [UInt8] {
        var summary = ProtobufWriter()
        for (tag, value) in scalars {
            var item = ProtobufWriter()
            item.bytes(field: 1, Array(tag.utf8))
            item.float(field: 2, Float(value))
            summary.bytes(field: 1, item.bytes)
        }
        var event = ProtobufWriter()
        event.double(field: 1, wallTime)
        event.varint(field: 2, UInt64(bitPattern: Int64(step)))
        event.bytes(field: 5, summary.bytes)
        return event.bytes
    }

    /// One TFRecord: length, its masked CRC, the payload, its masked CRC.
    static func record(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 16)
        let length = withUnsafeBytes(of: UInt64(payload.count).littleEndian, Array.init)
        out += length
        out += withUnsafeBytes(of: maskedCRC32C(length).littleEndian, Array.init)
        out += payload
        out += withUnsafeBytes(of: maskedCRC32C(payload).littleEndian, Array.init)
        return out
    }

    /// TFRecord's checksum: CRC-32C (Castagnoli), rotated right by 15 bits plus a constant, so
    /// that a CRC stored inside checksummed data does not checksum to zero.
    static func maskedCRC32C(_ bytes: [UInt8]) -> UInt32 {
        let crc = crc32c(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = crc32cTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    private static let crc32cTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }
}

/// The protobuf wire format for the few field kinds an event needs. Zero scalars outside a
/// oneof are left out, as proto3 serialisers do, so files match TensorBoard's own byte for byte.
struct ProtobufWriter {
    var bytes: [UInt8] = []

    private mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func tag(_ field: Int, _ wireType: UInt64) { rawVarint(UInt64(field) << 3 | wireType) }

    mutating func varint(field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        tag(field, 0)
        rawVarint(value)
    }

    mutating func double(field: Int, _ value: Double) {
        guard value != 0 else { return }
        tag(field, 1)
        bytes += withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init)
    }

    /// Always written: simple_value is a oneof member, which has presence even at zero.
    mutating func float(field: Int, _ value: Float) {
        tag(field, 5)
        bytes += withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init)
    }

    mutating func bytes(field: Int, _ value: [UInt8]) {
        tag(field, 2)
        rawVarint(UInt64(value.count))
        bytes += value
    }
}
