import Foundation
import Tensors
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
        let cpu_simulated: Bool
        let bf16_kernel: String
        let weights_auto: String
        let weights_auto_notice: String
        let weights_auto_inference: String
        let weights_auto_inference_notice: String
        let omp_wait_policy: String
        let omp_wait_policy_source: String
        let subnormals_flushed: Bool
        let subnormals_pool_threads: Int
        let subnormals_pool_flushing: Int
        let subnormals_openmp_threads: Int
        let subnormals_openmp_flushing: Int
        let subnormals_openblas_restarted: Bool
        let onednn_isa: String
        let onednn_bf16_matmul: String
        let onednn_f32_matmul: String
    }

    func runDoctor(environment extra: [String: String]) throws -> DoctorReport {
        var env = ProcessInfo.processInfo.environment
        for name in ["OPENBLAS_CORETYPE", "OMP_WAIT_POLICY", "OMP_NUM_THREADS", "THOUGHTCRIME_OPENBLAS_RESTARTED", "THOUGHTCRIME_OPENMP_SET"] {
            env.removeValue(forKey: name)
        }
        for (k, v) in extra { env[k] = v }
        let result = try CLI.run(["doctor", "--json"], environment: env)
        XCTAssertEqual(result.status, 0, result.stderr)
        return try JSONDecoder().decode(DoctorReport.self, from: Data(result.stdout.utf8))
    }

    func testCLIRunsPreferredKernelsAndTheyComputeCorrectProducts() throws {
        let report = try runDoctor(environment: [:])
        XCTAssertEqual(report.sgemm_failure, "")
        XCTAssertEqual(report.sgemm_checks_passed, 24)
        // OpenBLAS may name its own core for the CPU (Zen on AMD AVX2 parts): any core with
        // vectors as wide as the preferred one's is kept.
        if report.preferred_core != "none" {
            XCTAssertGreaterThanOrEqual(OpenBLASCoreSelection.vectorTier(of: report.openblas_core),
                                        OpenBLASCoreSelection.vectorTier(of: report.preferred_core),
                                        "running \(report.openblas_core), preferred \(report.preferred_core)")
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

    /// `auto` follows the features the toolkit sees, and `THOUGHTCRIME_CPU_FEATURES` changes
    /// them; the binary reports each CPU class's choice and its reason on any machine.
    func testDoctorReportsAutoChoiceForEachSimulatedCPUClass() throws {
        let amx = try runDoctor(environment: ["THOUGHTCRIME_CPU_FEATURES": "+avx512,+avx512_bf16,+amx"])
        XCTAssertTrue(amx.cpu_simulated || CPUFeatures.detected.hasAMX)
        if case .success = OneDNNPrecision.bf16.implementation {
            XCTAssertEqual(amx.weights_auto, "onednn-bf16")
            XCTAssertEqual(amx.weights_auto_inference, "quantized+onednn-bf16")
        } else {
            // The features are pretended: oneDNN still has no bf16 matmul, so Float32 with the reason.
            XCTAssertEqual(amx.weights_auto, "float32")
            XCTAssertTrue(amx.weights_auto_notice.contains("AMX present, but oneDNN cannot run bf16 matmul here"), amx.weights_auto_notice)
            XCTAssertEqual(amx.weights_auto_inference, "quantized")
            XCTAssertTrue(amx.weights_auto_inference_notice.contains("oneDNN cannot run bf16 matmul here"), amx.weights_auto_inference_notice)
        }

        let zen4 = try runDoctor(environment: ["THOUGHTCRIME_CPU_FEATURES": "+avx512,+avx512_bf16,-amx"])
        XCTAssertEqual(zen4.weights_auto, "bf16")
        XCTAssertTrue(zen4.weights_auto_notice.contains("AVX512_BF16 without AMX"), zen4.weights_auto_notice)
        XCTAssertEqual(zen4.sgemm_failure, "", "pretended features must not reach OpenBLAS's kernels")

        let avx2 = try runDoctor(environment: ["THOUGHTCRIME_CPU_FEATURES": "-avx512,-avx512_bf16,-amx"])
        XCTAssertEqual(avx2.weights_auto, "float32")
        XCTAssertEqual(avx2.weights_auto_inference, "quantized")
        XCTAssertNotEqual(avx2.bf16_kernel, "\(BF16Kernel.avx512BF16)", "a hidden AVX512_BF16 is not used")
    }

    /// The binary flushes subnormals from its first line, and says who chose OpenMP's wait policy.
    func testDoctorReportsSubnormalFlushingAndTheOpenMPWaitPolicy() throws {
        let report = try runDoctor(environment: [:])
        XCTAssertTrue(report.subnormals_flushed)
        XCTAssertGreaterThanOrEqual(report.subnormals_pool_threads, 1)
        XCTAssertEqual(report.subnormals_pool_flushing, report.subnormals_pool_threads)
        XCTAssertEqual(report.subnormals_openmp_flushing, report.subnormals_openmp_threads)
        XCTAssertTrue(report.subnormals_openblas_restarted)
        if OpenMPThreading.oneDNNComputes(on: .detected) {
            XCTAssertEqual(report.omp_wait_policy, "PASSIVE")
            XCTAssertTrue(report.omp_wait_policy_source.contains("set by ThoughtCrime"), report.omp_wait_policy_source)
        } else {
            XCTAssertTrue(report.omp_wait_policy_source.contains("oneDNN does not compute by default on this CPU"), report.omp_wait_policy_source)
        }
        let user = try runDoctor(environment: ["OMP_WAIT_POLICY": "ACTIVE"])
        XCTAssertEqual(user.omp_wait_policy, "ACTIVE")
        XCTAssertEqual(user.omp_wait_policy_source, "set by the user")
    }

    func testAMalformedFeatureOverrideIsReportedAndIgnored() throws {
        var env = ProcessInfo.processInfo.environment
        env["THOUGHTCRIME_CPU_FEATURES"] = "-amx,+avx1024"
        let result = try CLI.run(["doctor"], environment: env)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("unknown feature 'avx1024'"), result.stderr)
    }

    /// ONEDNN_MAX_CPU_ISA caps what oneDNN dispatches to, so a machine with AMX or AVX512_BF16
    /// can run its lower paths; capped at AVX2, oneDNN 2.6 has no bf16 matmul on any CPU, and
    /// doctor says so while its f32 matmul still runs.
    func testDoctorReportsOneDNNImplementationsUnderAnISACap() throws {
        try XCTSkipUnless(CPUFeatures.detected.avx2, "oneDNN's AVX2 cap needs an AVX2 CPU")
        let sse = try runDoctor(environment: ["ONEDNN_MAX_CPU_ISA": "SSE41"])
        XCTAssertEqual(sse.onednn_isa, "sse41", "the cap lowers what oneDNN dispatches to")
        let capped = try runDoctor(environment: ["ONEDNN_MAX_CPU_ISA": "AVX2"])
        XCTAssertEqual(capped.onednn_isa, "avx2")
        XCTAssertTrue(capped.onednn_bf16_matmul.hasPrefix("none ("), capped.onednn_bf16_matmul)
        XCTAssertFalse(capped.onednn_f32_matmul.hasPrefix("none"), capped.onednn_f32_matmul)
        let uncapped = try runDoctor(environment: [:])
        print("oneDNN uncapped: ISA \(uncapped.onednn_isa), bf16 \(uncapped.onednn_bf16_matmul), f32 \(uncapped.onednn_f32_matmul)")
    }
}
