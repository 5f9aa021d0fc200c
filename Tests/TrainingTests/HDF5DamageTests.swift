import CHDF5
import Foundation
import Tensors
import Training
import XCTest

/// Sizes a damaged or hostile HDF5 file declares are checked before anything is allocated
/// (issue 16, item 2: one flipped byte in a checkpoint's dataspace trapped or aborted).
final class HDF5DamageTests: TemporaryDirectoryTestCase {
    /// Writes a [7, 5] Float32 dataset and one int64 dataset of 6 values, then overwrites the
    /// first dimension (8 bytes, little-endian, in the dataspace message) with `dimension`.
    private func damagedFile(firstDimension dimension: UInt64) throws -> String {
        let file = try HDF5File.create(path: path("d.h5"))
        try file.writeTensor(Tensor(zeros: [7, 5]), at: "/adapter/w")
        try file.close()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path("d.h5"))))
        let dims: [UInt8] = [7, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]
        guard let at = (0...(bytes.count - dims.count)).first(where: { Array(bytes[$0..<($0 + dims.count)]) == dims }) else {
            XCTFail("dataspace dimensions not found in the file"); return path("d.h5")
        }
        withUnsafeBytes(of: dimension.littleEndian) { for (i, b) in $0.enumerated() { bytes[at + i] = b } }
        try Data(bytes).write(to: URL(fileURLWithPath: path("d.h5")))
        return path("d.h5")
    }

    func testADimensionThatWouldOverflowIsAnErrorNotATrap() throws {
        let file = try HDF5File.open(path: try damagedFile(firstDimension: 4_611_686_018_427_387_908))
        XCTAssertThrowsError(try file.readTensor(at: "/adapter/w")) { error in
            guard case .implausibleSize(_, let object, _)? = error as? HDF5Error else { return XCTFail("\(error)") }
            XCTAssertEqual(object, "/adapter/w")
            XCTAssertTrue("\(error)".contains("damaged"), "\(error)")
        }
    }

    func testADimensionLargerThanTheFileIsAnErrorNotAnAllocation() throws {
        // 140737488355392 x 5 floats: the "failed to allocate 562949953421568 bytes" reproducer
        let file = try HDF5File.open(path: try damagedFile(firstDimension: 140_737_488_355_392 / 5))
        XCTAssertThrowsError(try file.readTensor(at: "/adapter/w")) { error in
            guard case .implausibleSize? = error as? HDF5Error else { return XCTFail("\(error)") }
        }
    }

    func testASmallerDimensionStillReadsWithinTheFile() throws {
        // Damage that stays plausible reads as what the file now says; checkpoint checks
        // (shapes against the adapter config) are what catch it.
        let tensor = try HDF5File.open(path: try damagedFile(firstDimension: 3)).readTensor(at: "/adapter/w")
        XCTAssertEqual(tensor.shape, [3, 5])
    }

    func testAnAttributeHoldingSeveralValuesIsRefusedInsteadOfOverrunningOne() throws {
        _ = try HDF5File.create(path: path("init.h5"))  // initialises HDF5 as the toolkit does
        let fid = H5Fcreate(path("a.h5"), tc_h5f_acc_trunc(), tc_h5p_default(), tc_h5p_default())
        var dims: [hsize_t] = [4]
        let space = H5Screate_simple(1, &dims, nil)
        let attribute = H5Acreate2(fid, "step", tc_h5t_native_int64(), space, tc_h5p_default(), tc_h5p_default())
        var values: [Int64] = [1, 2, 3, 4]
        XCTAssertGreaterThanOrEqual(H5Awrite(attribute, tc_h5t_native_int64(), &values), 0)
        H5Aclose(attribute); H5Sclose(space); H5Fclose(fid)
        XCTAssertThrowsError(try HDF5File.open(path: path("a.h5")).attribute("step")) { error in
            guard case .wrongDataType(_, let object, _, let found)? = error as? HDF5Error else { return XCTFail("\(error)") }
            XCTAssertEqual(object, "/@step")
            XCTAssertEqual(found, "4 values")
        }
    }
}

/// A global heap object whose size wraps libhdf5's pointer made reading a checkpoint's strings
/// loop forever (found by fuzzing the `checkpoint` target).
final class HDF5GlobalHeapTests: TemporaryDirectoryTestCase {
    func testAHugeGlobalHeapObjectIsRefusedInsteadOfLoopingForever() throws {
        let file = try HDF5File.create(path: path("g.h5"))
        try file.writeString("resolved config text", at: "/config")
        try file.setAttribute("name", .string("run"))
        try file.close()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path("g.h5"))))
        let signature: [UInt8] = Array("GCOL".utf8) + [1, 0, 0, 0]
        let start = try XCTUnwrap((0...(bytes.count - 8)).first { Array(bytes[$0..<($0 + 8)]) == signature })
        // The first object's size field: 16 bytes of collection header, then 8 of object header.
        for i in 0..<8 { bytes[start + 16 + 8 + i] = 0xFF }
        try Data(bytes).write(to: URL(fileURLWithPath: path("g.h5")))
        XCTAssertThrowsError(try HDF5File.open(path: path("g.h5"))) { error in
            guard case .implausibleSize(_, let object, _)? = error as? HDF5Error else { return XCTFail("\(error)") }
            XCTAssertEqual(object, "global heap collection at byte \(start)")
        }
    }

    func testTheFuzzerFoundHangIsRefused() throws {
        let reproducer = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/regressions/checkpoint/timeout-global-heap-object-size").path
        XCTAssertThrowsError(try CheckpointReader.read(reproducer))
    }
}
