import Foundation
@testable import Training
import XCTest

/// TensorBoard event files: TensorBoard's own encoding byte for byte, and one event per
/// metrics line of a run.
final class TensorBoardEventFileTests: TinyRunTestCase {
    /// The records of an event file, each checked against its two checksums.
    func records(_ path: String) throws -> [[UInt8]] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var out: [[UInt8]] = [], at = 0
        func u32(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[i + $1]) << (8 * $1) } }
        while at < bytes.count {
            let length = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * $1) })
            XCTAssertEqual(u32(at + 8), TensorBoardEventFile.maskedCRC32C(Array(bytes[at..<at + 8])))
            let payload = Array(bytes[at + 12..<at + 12 + length])
            XCTAssertEqual(u32(at + 12 + length), TensorBoardEventFile.maskedCRC32C(payload))
            out.append(payload)
            at += 16 + length
        }
        return out
    }

    /// An event's step (field 2) and the tags of its summary values, read the simple way:
    /// the writer's field order is fixed.
    func stepAndTags(_ event: [UInt8]) -> (step: Int, tags: [String]) {
        var at = 0, step = 0, tags: [String] = []
        func varint() -> Int {
            var v = 0, shift = 0
            while true {
                let b = Int(event[at]); at += 1
                v |= (b & 0x7F) << shift; shift += 7
                if b < 0x80 { return v }
            }
        }
        while at < event.count {
            let key = varint()
            switch key {
            case 0x09: at += 8
            case 0x10: step = varint()
            case 0x2A:
                let end = varint() + at
                while at < end {
                    _ = varint(); let valueEnd = varint() + at  // Summary.value
                    _ = varint(); let n = varint()              // Value.tag
                    tags.append(String(decoding: event[at..<at + n], as: UTF8.self))
                    at = valueEnd
                }
            default:
                at = event.count
            }
        }
        return (step, tags)
    }

    func testCRC32CIsTheCastagnoliChecksum() {
        XCTAssertEqual(TensorBoardEventFile.crc32c(Array("123456789".utf8)), 0xE306_9283)
    }

    /// The fixture was written by scripts/reference/make_tensorboard_fixtures.py with
    /// TensorBoard's protobuf classes and record writer.
    func testEventsMatchTensorBoardsOwnEncodingByteForByte() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "tensorboard_events", withExtension: "bin", subdirectory: "Fixtures"))
        var ours = TensorBoardEventFile.record(TensorBoardEventFile.versionEvent(wallTime: 1764633600.125))
        ours += TensorBoardEventFile.record(TensorBoardEventFile.scalarEvent(step: 0, wallTime: 1764633601.5, scalars: [("val/loss", 3.25)]))
        ours += TensorBoardEventFile.record(TensorBoardEventFile.scalarEvent(step: 1, wallTime: 1764633602.75, scalars: [
            ("train/loss", 2.5), ("train/learning_rate", 1e-4), ("train/grad_norm", 0.875), ("train/tokens_per_s", 1234.5)]))
        ours += TensorBoardEventFile.record(TensorBoardEventFile.scalarEvent(step: 300, wallTime: 1764633610.0, scalars: [
            ("train/loss", 1.0625), ("val/loss", 1.5), ("test/loss", 1.625)]))
        XCTAssertEqual(ours, [UInt8](try Data(contentsOf: url)))
    }

    func testATrainingRunWritesOneEventPerMetricsLine() throws {
        let summary = try Trainer(config: try TinyRun.config(dir: dir, overrides: ["data.test=\(dir)/train.jsonl"]), progress: TinyRun.Silent()).run()
        let files = try FileManager.default.contentsOfDirectory(atPath: summary.runDirectory).filter { $0.hasPrefix("events.out.tfevents.") }
        XCTAssertEqual(files.count, 1)
        let events = try records("\(summary.runDirectory)/\(files[0])")
        let log = try MetricsLog(runDirectory: summary.runDirectory)
        XCTAssertEqual(events.count, log.entries.count + 1)
        XCTAssertEqual(String(decoding: events[0].suffix(13), as: UTF8.self), "brain.Event:2")
        let decoded = events.dropFirst().map(stepAndTags)
        XCTAssertEqual(decoded.map(\.step), log.entries.map(\.step))
        XCTAssertEqual(decoded[0].tags, ["train/tokens_seen", "val/loss"])  // step 0: the validation before training
        XCTAssertEqual(Array(decoded[1].tags.prefix(2)), ["train/loss", "train/learning_rate"])
        XCTAssertEqual(decoded.last?.tags, ["train/tokens_seen", "test/loss"])
    }

    func testTensorboardFalseWritesNoEventFile() throws {
        let summary = try Trainer(config: try TinyRun.config(dir: dir, overrides: ["logging.tensorboard=false", "training.max_steps=2"]),
                                  progress: TinyRun.Silent()).run()
        let files = try FileManager.default.contentsOfDirectory(atPath: summary.runDirectory)
        XCTAssertFalse(files.contains { $0.hasPrefix("events.out.tfevents.") }, "\(files)")
    }

    func testExportWritesEachRunUnderItsNameWithTheMetricsTimes() throws {
        let run = "\(dir)/runs/old-run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        try """
        {"step": 0, "val_loss": 3.5, "time": "2026-12-02T00:00:00.000Z"}
        {"step": 1, "loss": 3.0, "lr": 0.001, "time": "2026-12-02T00:00:01.500Z"}

        """.write(toFile: "\(run)/metrics.jsonl", atomically: true, encoding: .utf8)
        let written = try TensorBoardEventFile.export([try MetricsLog(runDirectory: run)], to: "\(dir)/tb")
        XCTAssertEqual(written.count, 1)
        XCTAssertEqual((written[0] as NSString).lastPathComponent, "events.out.tfevents.1796169600.thoughtcrime")
        var expected = TensorBoardEventFile.record(TensorBoardEventFile.versionEvent(wallTime: 1796169600))
        expected += TensorBoardEventFile.record(TensorBoardEventFile.scalarEvent(step: 0, wallTime: 1796169600, scalars: [("val/loss", 3.5)]))
        expected += TensorBoardEventFile.record(TensorBoardEventFile.scalarEvent(step: 1, wallTime: 1796169601.5, scalars: [
            ("train/loss", 3.0), ("train/learning_rate", 0.001)]))
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: written[0]))), expected)
    }
}
