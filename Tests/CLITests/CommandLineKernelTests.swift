import Foundation
import XCTest

/// Runs the built `thoughtcrime` binary, which selects OpenBLAS kernels before `main`, to prove
/// the selection end to end: the restart happens and the kernels it selects compute correctly.
final class CommandLineKernelTests: XCTestCase {
    struct DoctorReport: Decodable {
        let openblas_core: String
        let preferred_core: String
        let restarted: Bool
        let sgemm_checks_passed: Int
        let sgemm_failure: String
    }

    func runDoctor(environment extra: [String: String]) throws -> DoctorReport {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "OPENBLAS_CORETYPE")
        for (k, v) in extra { env[k] = v }
        let result = try CLI.run(["doctor", "--json"], environment: env)
        XCTAssertEqual(result.status, 0, result.stderr)
        return try JSONDecoder().decode(DoctorReport.self, from: Data(result.stdout.utf8))
    }

    func testCLIRunsPreferredKernelsAndTheyComputeCorrectProducts() throws {
        let report = try runDoctor(environment: [:])
        XCTAssertEqual(report.sgemm_failure, "")
        XCTAssertEqual(report.sgemm_checks_passed, 24)
        if report.preferred_core != "none" {
            XCTAssertEqual(report.openblas_core.lowercased(), report.preferred_core.lowercased())
        }
    }

    /// Simulates Debian's misdetection (OpenBLAS choosing Prescott on an AVX-512 CPU) and checks
    /// that the binary restarts itself once with the preferred core, whose sgemm is verified.
    func testMisdetectedCoreTriggersOneRestartWithPreferredKernels() throws {
        let report = try runDoctor(environment: ["THOUGHTCRIME_OPENBLAS_SIMULATE_CORE": "Prescott"])
        guard report.preferred_core != "none", report.preferred_core.lowercased() != "prescott" else {
            throw XCTSkip("this CPU has no vector unit better than Prescott's")
        }
        XCTAssertTrue(report.restarted)
        XCTAssertEqual(report.openblas_core.lowercased(), report.preferred_core.lowercased())
        XCTAssertEqual(report.sgemm_checks_passed, 24)
    }
}
