import Foundation
import Tensors
import Training
import XCTest

final class CheckpointTests: TemporaryDirectoryTestCase {
    private let modules = fixtureModules
    func makeState(step: Int) throws -> CheckpointState { try checkpointStateFixture(step: step) }

    private func assertBitExact(_ a: Tensor, _ b: Tensor, _ what: String, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what, line: line)
        XCTAssertEqual(a.scalars.map(\.bitPattern), b.scalars.map(\.bitPattern), what, line: line)
    }

    func testRoundTripIsBitExact() throws {
        let state = try makeState(step: 100)
        let written = try CheckpointWriter(runDirectory: directory, keepLast: 3).write(state)
        XCTAssertEqual((written as NSString).lastPathComponent, "step-000100.h5")
        let back = try CheckpointReader.read(written)

        XCTAssertEqual(back.step, 100)
        XCTAssertEqual(back.epoch, 1)
        XCTAssertEqual(back.tokensSeen, 12_345)
        XCTAssertEqual(back.createdUTC, state.createdUTC)
        XCTAssertEqual(back.baseFingerprint, "sha256:base")
        XCTAssertEqual(back.tokenizerFingerprint, "sha256:tok")
        XCTAssertEqual(back.configYAML, state.configYAML)
        XCTAssertEqual(back.adapter.rank, 4)
        XCTAssertEqual(back.adapter.alpha, 16)
        XCTAssertTrue(back.adapter.useRSLoRA)
        XCTAssertEqual(back.adapter.targets, ["q_proj", "down_proj"])
        XCTAssertEqual(back.adapter.modules.keys.sorted(), modules)
        for module in modules {
            assertBitExact(back.adapter.modules[module]!.a, state.adapter.modules[module]!.a, "\(module) A")
            assertBitExact(back.adapter.modules[module]!.b, state.adapter.modules[module]!.b, "\(module) B")
            let m = back.optimizer.moments[module]!, e = state.optimizer.moments[module]!
            for (x, y, name) in [(m.mA, e.mA, "m_A"), (m.vA, e.vA, "v_A"), (m.mB, e.mB, "m_B"), (m.vB, e.vB, "v_B")] {
                assertBitExact(x, y, "\(module) \(name)")
            }
        }
        XCTAssertEqual(back.optimizer.step, 100)
        XCTAssertEqual(back.optimizer.epsilon, 1e-8)
        XCTAssertEqual(back.scheduler, state.scheduler)
        XCTAssertEqual(back.rngState, state.rngState)
        XCTAssertEqual(back.data, state.data)
        XCTAssertEqual(back.metrics, state.metrics)
    }

    func testLatestPointerNamesTheNewestCheckpoint() throws {
        let writer = try CheckpointWriter(runDirectory: directory, keepLast: 3)
        try writer.write(try makeState(step: 50))
        try writer.write(try makeState(step: 100))
        XCTAssertEqual(try String(contentsOfFile: path("latest"), encoding: .utf8), "step-000100.h5\n")
        XCTAssertEqual(try CheckpointReader.latestCheckpoint(in: directory), path("step-000100.h5"))
    }

    func testLeftoverTemporaryFileFromACrashIsIgnored() throws {
        try CheckpointWriter(runDirectory: directory, keepLast: 3).write(try makeState(step: 50))
        // A crash while writing step 100: half a file under the temporary name, pointer unchanged.
        XCTAssertTrue(FileManager.default.createFile(atPath: path("step-000100.h5.tmp"), contents: Data(repeating: 7, count: 1000)))
        let latest = try CheckpointReader.latestCheckpoint(in: directory)
        XCTAssertEqual(latest, path("step-000050.h5"))
        XCTAssertEqual(try CheckpointReader.read(latest).step, 50)
    }

    func testMissingPointerFallsBackToTheHighestCompleteCheckpoint() throws {
        let writer = try CheckpointWriter(runDirectory: directory, keepLast: 3)
        try writer.write(try makeState(step: 50))
        try writer.write(try makeState(step: 100))
        try FileManager.default.removeItem(atPath: path("latest"))
        XCTAssertEqual(try CheckpointReader.latestCheckpoint(in: directory), path("step-000100.h5"))
    }

    func testEmptyRunDirectoryHasNoCheckpoint() {
        XCTAssertThrowsError(try CheckpointReader.latestCheckpoint(in: directory)) { error in
            guard case .noCheckpoint? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }

    func testOnlyTheLastKCheckpointsAreKept() throws {
        let writer = try CheckpointWriter(runDirectory: directory, keepLast: 2)
        for step in [10, 20, 30, 40] { try writer.write(try makeState(step: step)) }
        XCTAssertEqual(CheckpointReader.checkpoints(in: directory).map(\.step), [30, 40])
    }

    func testNextWriteRemovesLeftoverTemporaryFiles() throws {
        XCTAssertTrue(FileManager.default.createFile(atPath: path("step-000007.h5.tmp"), contents: Data([1, 2, 3])))
        try CheckpointWriter(runDirectory: directory, keepLast: 2).write(try makeState(step: 10))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("step-000007.h5.tmp")))
    }

    func testTruncatedFileGivesAClearError() throws {
        let written = try CheckpointWriter(runDirectory: directory, keepLast: 3).write(try makeState(step: 5))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: written))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: written))
        XCTAssertThrowsError(try CheckpointReader.read(written)) { error in
            guard case let .damaged(file, reason)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, written)
            XCTAssertFalse(reason.isEmpty)
        }
    }

    func testGarbageFileGivesAClearError() throws {
        XCTAssertTrue(FileManager.default.createFile(atPath: path("step-000001.h5"), contents: Data((0..<5000).map { UInt8($0 % 251) })))
        XCTAssertThrowsError(try CheckpointReader.read(path("step-000001.h5"))) { error in
            XCTAssertTrue("\(error)".contains(path("step-000001.h5")), "\(error)")
        }
    }

    func testFileWithoutTheFormatAttributeIsRefused() throws {
        let file = try HDF5File.create(path: path("other.h5"))
        try file.writeInt64s([1], at: "/x")
        try file.close()
        XCTAssertThrowsError(try CheckpointReader.read(path("other.h5"))) { error in
            guard case let .notACheckpoint(file, found)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, path("other.h5"))
            XCTAssertNil(found)
        }
    }

    func testNewerFormatVersionIsRefused() throws {
        let written = try CheckpointWriter(runDirectory: directory, keepLast: 3).write(try makeState(step: 5))
        let file = try HDF5File.open(path: written, writable: true)
        try file.setAttribute("format_version", .int64(CheckpointFormat.version + 1))
        try file.close()
        XCTAssertThrowsError(try CheckpointReader.read(written)) { error in
            guard case .unsupportedVersion(written, CheckpointFormat.version + 1, CheckpointFormat.version)? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }

    func testMomentsOfTheWrongShapeAreRejectedBeforeWriting() throws {
        var state = try makeState(step: 5)
        state.optimizer.moments[modules[0]]?.mA = Tensor(zeros: [1])
        XCTAssertThrowsError(try CheckpointWriter(runDirectory: directory, keepLast: 3).write(state))
        XCTAssertTrue(CheckpointReader.checkpoints(in: directory).isEmpty)
    }
}

/// Values a checkpoint holds are checked on reading (issue 16, item 9), and a damaged newest
/// checkpoint falls back to the one before it (item 7).
extension CheckpointTests {
    private func written(step: Int = 5, edit: (HDF5File) throws -> Void) throws -> String {
        let path = try CheckpointWriter(runDirectory: directory, keepLast: 3).write(try makeState(step: step))
        let file = try HDF5File.open(path: path, writable: true)
        try edit(file)
        try file.close()
        return path
    }

    private func assertDamaged(_ path: String, mentioning text: String, line: UInt = #line) {
        XCTAssertThrowsError(try CheckpointReader.read(path), line: line) { error in
            guard case let .damaged(file, reason)? = error as? CheckpointError else { return XCTFail("\(error)", line: line) }
            XCTAssertEqual(file, path, line: line)
            XCTAssertTrue(reason.contains(text), reason, line: line)
        }
    }

    func testANegativeDataCursorIsRefused() throws {
        assertDamaged(try written { try $0.writeInt64s([-5], at: "/data/cursor") }, mentioning: "/data/cursor is -5")
    }

    func testAStepBeyondAnyRunIsRefused() throws {
        assertDamaged(try written { try $0.setAttribute("step", .int64(1 << 62)) }, mentioning: "step is 4611686018427387904")
    }

    func testAStepThatDisagreesWithTheFileNameIsRefused() throws {
        assertDamaged(try written { try $0.setAttribute("step", .int64(7)) }, mentioning: "its name says step 5")
    }

    func testANegativeFormatVersionIsRefused() throws {
        assertDamaged(try written { try $0.setAttribute("format_version", .int64(-1)) }, mentioning: "format_version is -1")
    }

    func testANaNInAnAdapterIsRefusedNamingTheTensor() throws {
        let module = "model.layers.1.mlp.down_proj"
        let bad = try Tensor(shape: [5, 4], scalars: (0..<20).map { $0 == 7 ? .nan : 0.1 })
        assertDamaged(try written { try $0.writeTensor(bad, at: "/adapter/\(module)/lora_B") },
                      mentioning: "/adapter/\(module)/lora_B holds nan at element 7")
    }

    func testANegativeSecondMomentIsRefused() throws {
        let module = "model.layers.0.self_attn.q_proj"
        assertDamaged(try written { try $0.writeTensor(Tensor(shape: [4, 6], repeating: -1), at: "/optimizer/\(module)/v_A") },
                      mentioning: "/optimizer/\(module)/v_A holds -1.0 at element 0")
    }

    func testAStoredConfigNestedThousandsDeepIsRefusedInsteadOfCrashing() throws {
        let deep = "run:\n  name: x\nlist:\n" + String(repeating: "- ", count: 20_000) + "x\n"
        assertDamaged(try written { try $0.writeString(deep, at: "/config") },
                      mentioning: "/config is not readable YAML: line 4: nested more than")
    }

    func testAnAllZeroRandomStateIsRefusedNamingTheDataset() throws {
        assertDamaged(try written { try $0.writeUInt64s([0, 0, 0, 0], at: "/rng") }, mentioning: "/rng: random state is all zeros")
    }

    func testAFlippedBitThatLeavesAValueValidIsCaughtByTheDatasetChecksum() throws {
        let state = try makeState(step: 5)
        let path = try CheckpointWriter(runDirectory: directory, keepLast: 3).write(state)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let word = withUnsafeBytes(of: state.rngState[0].littleEndian) { Data($0) }
        let at = try XCTUnwrap(bytes.range(of: word)).lowerBound
        bytes[at] ^= 0x01  // still a nonzero random state: no value check can tell
        try bytes.write(to: URL(fileURLWithPath: path))
        assertDamaged(path, mentioning: "/rng does not match its checksum")
    }

    func testEveryDatasetOfANewCheckpointCarriesAChecksum() throws {
        let path = try CheckpointWriter(runDirectory: directory, keepLast: 3).write(try makeState(step: 5))
        let file = try HDF5File.open(path: path)
        defer { try? file.close() }
        for dataset in ["/config", "/rng", "/data/order", "/data/cursor", "/data/epoch",
                        "/adapter/model.layers.0.self_attn.q_proj/lora_A", "/optimizer/model.layers.0.self_attn.q_proj/v_B"] {
            guard case let .string(digest) = try file.attribute("checksum", on: dataset) else { return XCTFail(dataset) }
            XCTAssertTrue(digest.hasPrefix("fnv1a64:") && digest.count == 24, "\(dataset): \(digest)")
        }
    }

    func testANewestCheckpointWithAHostileConfigFallsBackToThePreviousOne() throws {
        let writer = try CheckpointWriter(runDirectory: directory, keepLast: 3)
        try writer.write(try makeState(step: 50))
        let newest = try writer.write(try makeState(step: 100))
        let file = try HDF5File.open(path: newest, writable: true)
        try file.writeString("a: " + String(repeating: "[", count: 50_000), at: "/config")
        try file.close()

        let latest = try CheckpointReader.readLatest(in: directory)
        XCTAssertEqual(latest.state.step, 50)
        XCTAssertEqual(latest.skipped.map(\.path), [newest])
    }

    func testADamagedNewestCheckpointFallsBackToThePreviousOne() throws {
        let writer = try CheckpointWriter(runDirectory: directory, keepLast: 3)
        try writer.write(try makeState(step: 50))
        let newest = try writer.write(try makeState(step: 100))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: newest))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: newest))

        let latest = try CheckpointReader.readLatest(in: directory)
        XCTAssertEqual(latest.path, path("step-000050.h5"))
        XCTAssertEqual(latest.state.step, 50)
        XCTAssertEqual(latest.skipped.map(\.path), [newest])
        XCTAssertEqual(latest.warnings.count, 1)
        XCTAssertTrue(latest.warnings[0].contains(newest) && latest.warnings[0].contains("using \(path("step-000050.h5"))"), latest.warnings[0])

        let adapter = try AdapterSource.load(path: directory, modelConfig: nil)
        XCTAssertEqual(adapter.path, path("step-000050.h5"))
        XCTAssertEqual(adapter.warnings, latest.warnings)
    }

    func testWhenEveryCheckpointIsDamagedTheNewestOnesErrorIsReported() throws {
        let writer = try CheckpointWriter(runDirectory: directory, keepLast: 3)
        for step in [50, 100] {
            let p = try writer.write(try makeState(step: step))
            try Data("not hdf5".utf8).write(to: URL(fileURLWithPath: p))
        }
        XCTAssertThrowsError(try CheckpointReader.readLatest(in: directory)) { error in
            guard case let .damaged(file, _)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, path("step-000100.h5"))
        }
    }

    func testANewerFormatVersionStopsTheFallback() throws {
        let writer = try CheckpointWriter(runDirectory: directory, keepLast: 3)
        try writer.write(try makeState(step: 50))
        let newest = try writer.write(try makeState(step: 100))
        let file = try HDF5File.open(path: newest, writable: true)
        try file.setAttribute("format_version", .int64(CheckpointFormat.version + 1))
        try file.close()
        XCTAssertThrowsError(try CheckpointReader.readLatest(in: directory)) { error in
            guard case .unsupportedVersion? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }
}

/// A checkpoint write that fails part-way (issue 16, item 5) leaves nothing partial and keeps
/// `latest` on the previous checkpoint.
extension CheckpointTests {
    /// Runs `body` with this process's file size limit at `bytes` (writes past it fail with
    /// EFBIG, as on a full disk) and SIGXFSZ ignored.
    private func withFileSizeLimit(_ bytes: rlim_t, _ body: () -> Void) {
        var saved = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var limited = saved
        limited.rlim_cur = bytes
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limited)
        defer {
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
            signal(SIGXFSZ, previousHandler)
        }
        body()
    }

    func testAFailedWriteLeavesNoPartialFileAndLatestOnThePreviousCheckpoint() throws {
        let writer = try CheckpointWriter(runDirectory: directory, keepLast: 3)
        let previous = try writer.write(try makeState(step: 50))
        let next = try makeState(step: 100)
        var failure: Error?
        withFileSizeLimit(4096) {
            do { try writer.write(next) } catch { failure = error }
        }
        XCTAssertTrue(failure.map { "\($0)".contains("File too large") } ?? false, "\(String(describing: failure))")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).sorted(), ["latest", "step-000050.h5"])
        XCTAssertEqual(try CheckpointReader.readLatest(in: directory).path, previous)
    }
}

let fixtureModules = ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"]

private func fixtureTensor(_ shape: Shape, _ seed: Float) throws -> Tensor {
    try Tensor(shape: shape, scalars: (0..<shape.count).map { sin(Float($0) * 1.3 + seed) * 1e-3 + seed })
}

/// A small checkpoint state of two adapted modules, distinct per `step`.
func checkpointStateFixture(step: Int) throws -> CheckpointState {
    var weights: [String: CheckpointState.AdapterWeights] = [:]
    var moments: [String: CheckpointState.AdapterMoments] = [:]
    for (k, module) in fixtureModules.enumerated() {
        let s = Float(k + step)
        weights[module] = .init(a: try fixtureTensor([4, 6], s), b: try fixtureTensor([5, 4], s + 0.5))
        moments[module] = .init(mA: try fixtureTensor([4, 6], s + 1), vA: try fixtureTensor([4, 6], s + 2),
                                mB: try fixtureTensor([5, 4], s + 3), vB: try fixtureTensor([5, 4], s + 4))
    }
    return CheckpointState(
        step: step, epoch: 1, tokensSeen: 12_345, createdUTC: "2025-01-31T12:00:00Z",
        baseFingerprint: "sha256:base", tokenizerFingerprint: "sha256:tok",
        configYAML: RunConfig(runName: "r", modelPath: "m.gguf", trainData: "t.jsonl").resolvedYAML(),
        adapter: .init(rank: 4, alpha: 16, useRSLoRA: true, targets: ["q_proj", "down_proj"], modules: weights),
        optimizer: .init(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01, step: step, moments: moments),
        scheduler: .init(name: "cosine", warmupSteps: 10, totalSteps: 500, lastLR: 1.5e-4, minLRRatio: 0.1, baseLR: 2e-4),
        rngState: TrainingRNG(seed: 99).stateWords,
        data: .init(order: [4, 2, 0, 1, 3], cursor: 2, epoch: 1),
        metrics: .init(lastLoss: 1.25, lastValidationLoss: nil))
}
