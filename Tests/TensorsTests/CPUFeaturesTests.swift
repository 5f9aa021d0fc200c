import Tensors
import XCTest

/// `THOUGHTCRIME_CPU_FEATURES` lets one machine act out another CPU class for the toolkit's
/// decisions: `-name` hides a feature, `+name` adds one.
final class CPUFeaturesTests: XCTestCase {
    let zen4 = CPUFeatures(vendor: "AuthenticAMD", family: 25, model: 17, avx: true, avx2: true, fma: true, avx512f: true,
                           avx512bw: true, avx512vl: true, avx512dq: true, avx512cd: true, avx512bf16: true,
                           osSavesAVX: true, osSavesAVX512: true)

    func testHidingAMXAndAVX512BF16LeavesTheRestAlone() throws {
        var xeon = zen4
        xeon.amxTile = true; xeon.amxBF16 = true
        let hidden = try xeon.applying("-amx, -avx512_bf16")
        XCTAssertFalse(hidden.hasAMX)
        XCTAssertFalse(hidden.hasAVX512BF16)
        XCTAssertTrue(hidden.hasAVX512)
        XCTAssertTrue(hidden.avx2)
    }

    func testAddingAVX512AddsEverySubsetAndTheOSState() throws {
        let avx2Only = CPUFeatures(avx: true, avx2: true, fma: true, osSavesAVX: true)
        let added = try avx2Only.applying("+avx512,+avx512_bf16,+amx")
        XCTAssertTrue(added.hasAVX512)
        XCTAssertTrue(added.hasAVX512BF16)
        XCTAssertTrue(added.hasAMX)
    }

    func testAnUnknownNameIsRejectedListingTheKnownOnes() {
        XCTAssertThrowsError(try zen4.applying("-amx,-avx512bf16")) { error in
            XCTAssertTrue("\(error)".contains("unknown feature 'avx512bf16'"), "\(error)")
            XCTAssertTrue("\(error)".contains("avx512_bf16"), "\(error)")
        }
    }

    func testANameWithoutASignIsRejected() {
        XCTAssertThrowsError(try zen4.applying("amx")) { error in
            XCTAssertTrue("\(error)".contains("'amx' must start with + (add) or - (hide)"), "\(error)")
        }
    }

    func testAnEmptySpecificationChangesNothing() throws {
        XCTAssertEqual(try zen4.applying(""), zen4)
        XCTAssertEqual(try zen4.applying(" , "), zen4)
    }
}
