import Foundation
import Training
import XCTest

/// `CheckpointIsolation`: a checkpoint is parsed here only after a child process read it
/// completely. The children below are shell one-liners that behave as a crashing, hanging or
/// rejecting reader would, so every outcome is tested on any machine; the real reader on a real
/// crafted file is tested in CLITests (`CheckpointIsolationCommandTests`).
final class CheckpointIsolationTests: TemporaryDirectoryTestCase {
    override func tearDownWithError() throws {
        CheckpointReader.isolation = nil
        try super.tearDownWithError()
    }

    /// A child running `script` with the checkpoint path as `$1`.
    private func isolation(_ script: String, timeout: TimeInterval = 30) -> CheckpointIsolation {
        CheckpointIsolation(executable: "/bin/sh", arguments: ["-c", script, "reader"], timeout: timeout)
    }

    private func writtenCheckpoint(step: Int = 50) throws -> String {
        try CheckpointWriter(runDirectory: directory, keepLast: 3).write(try checkpointStateFixture(step: step))
    }

    func testAReaderThatCrashesMakesTheCheckpointUnsafeEvenWhenThisProcessCouldReadIt() throws {
        let file = try writtenCheckpoint()
        CheckpointReader.isolation = isolation("kill -SEGV $$")
        XCTAssertThrowsError(try CheckpointReader.read(file)) { error in
            guard case let .unsafeToRead(path, reason)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, file)
            XCTAssertTrue(reason.contains("crashed the HDF5 library (SIGSEGV"), reason)
            XCTAssertTrue("\(error)".contains("this process did not open it"), "\(error)")
        }
    }

    func testAReaderThatHangsIsStoppedAtTheTimeout() throws {
        let file = try writtenCheckpoint()
        CheckpointReader.isolation = isolation("sleep 30", timeout: 0.5)
        let start = Date()
        XCTAssertThrowsError(try CheckpointReader.read(file)) { error in
            guard case let .unsafeToRead(_, reason)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("did not finish within 0.5 s"), reason)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 10, "the hung child is killed, not waited for")
    }

    func testAReaderThatFinishesLetsThisProcessReadTheCheckpoint() throws {
        let file = try writtenCheckpoint()
        CheckpointReader.isolation = isolation("test -f \"$1\" && exit 0")
        XCTAssertEqual(try CheckpointReader.read(file).step, 50)
    }

    func testAReaderThatRejectsTheFileLeavesTheTypedErrorToThisProcess() throws {
        let file = (directory as NSString).appendingPathComponent("step-000001.h5")
        try Data("not hdf5".utf8).write(to: URL(fileURLWithPath: file))
        CheckpointReader.isolation = isolation("exit \(CheckpointIsolation.exitRejected)")
        XCTAssertThrowsError(try CheckpointReader.read(file)) { error in
            guard case .damaged? = error as? CheckpointError else { return XCTFail("expected the in-process error, got \(error)") }
        }
    }

    func testAReaderThatFailsOtherwiseIsReportedWithWhatItSaid() throws {
        let file = try writtenCheckpoint()
        CheckpointReader.isolation = isolation("echo 'AddressSanitizer: SEGV on unknown address' >&2; exit 1")
        XCTAssertThrowsError(try CheckpointReader.read(file)) { error in
            guard case let .unsafeToRead(_, reason)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("exit status 1: AddressSanitizer: SEGV"), reason)
        }
    }

    func testAReaderThatCannotStartIsNamed() throws {
        let file = try writtenCheckpoint()
        CheckpointReader.isolation = CheckpointIsolation(executable: "/nonexistent/thoughtcrime")
        XCTAssertThrowsError(try CheckpointReader.read(file)) { error in
            guard case let .unsafeToRead(_, reason)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("/nonexistent/thoughtcrime could not be started"), reason)
        }
    }

    func testACheckpointThatCrashesItsReaderFallsBackToThePreviousOne() throws {
        let previous = try writtenCheckpoint(step: 50)
        let newest = try writtenCheckpoint(step: 100)
        CheckpointReader.isolation = isolation("case \"$1\" in *step-000100.h5) kill -SEGV $$;; esac; exit 0")
        let latest = try CheckpointReader.readLatest(in: directory)
        XCTAssertEqual(latest.path, previous)
        XCTAssertEqual(latest.skipped.map(\.path), [newest])
        XCTAssertTrue(latest.warnings[0].contains("SIGSEGV"), latest.warnings[0])
    }
}
