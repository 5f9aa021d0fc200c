import CHDF5
import Foundation
import XCTest

/// Proves the HDF5 system library and its macro shims work from Swift: a float dataset written
/// through the C API reads back unchanged.
final class HDF5LinkTests: XCTestCase {
    func testFloatDatasetRoundTripsThroughTheCLibrary() throws {
        tc_h5_prepare()  // before any other HDF5 call, as the toolkit does
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("tc-h5-\(UUID().uuidString).h5").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let values: [Float] = [1.5, -2, 3.25, 0, 7, 8]

        let file = H5Fcreate(path, tc_h5f_acc_trunc(), tc_h5p_default(), tc_h5p_default())
        XCTAssertGreaterThanOrEqual(file, 0)
        var dims: [hsize_t] = [2, 3]
        let space = H5Screate_simple(2, &dims, nil)
        let dset = H5Dcreate2(file, "weights", tc_h5t_native_float(), space, tc_h5p_default(), tc_h5p_default(), tc_h5p_default())
        XCTAssertGreaterThanOrEqual(dset, 0)
        XCTAssertGreaterThanOrEqual(H5Dwrite(dset, tc_h5t_native_float(), tc_h5s_all(), tc_h5s_all(), tc_h5p_default(), values), 0)
        H5Dclose(dset); H5Sclose(space); H5Fclose(file)

        let rfile = H5Fopen(path, tc_h5f_acc_rdonly(), tc_h5p_default())
        XCTAssertGreaterThanOrEqual(rfile, 0)
        let rset = H5Dopen2(rfile, "weights", tc_h5p_default())
        var back = [Float](repeating: 0, count: 6)
        XCTAssertGreaterThanOrEqual(H5Dread(rset, tc_h5t_native_float(), tc_h5s_all(), tc_h5s_all(), tc_h5p_default(), &back), 0)
        H5Dclose(rset); H5Fclose(rfile)
        XCTAssertEqual(back, values)
    }

    func testOpeningAMissingFileFailsWithoutCrashing() {
        tc_h5_prepare()  // before any other HDF5 call, as the toolkit does
        let id = H5Fopen("/nonexistent/tc.h5", tc_h5f_acc_rdonly(), tc_h5p_default())
        XCTAssertLessThan(id, 0)
    }
}
