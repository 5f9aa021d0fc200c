import ArgumentParser
import CDNNL
import CHDF5
import Foundation
import Models
import Tensors

/// `thoughtcrime doctor`: what this machine gives the toolkit, and a check that the BLAS
/// kernels in use compute correct products.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Report CPU features, the OpenBLAS kernels in use and library versions; verify sgemm.")

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        let cpu = CPUFeatures.current
        let core = OpenBLASCoreSelection.activeCore
        let preferred = OpenBLASCoreSelection.preferredCore(for: cpu)
        let checked: Int
        var failure: String?
        do { checked = try GEMM.verify() } catch {
            checked = 0
            failure = "\(error)"
        }
        let h5 = tc_h5_version()
        let automatic = WeightStorage.automatic(), inference = WeightStorage.automaticForInference()
        let openMP = OpenMPThreading.current
        let pool = SubnormalFlushing.poolThreads(), openMPFlushing = SubnormalFlushing.openMPThreads()
        func describe(_ r: Result<String, TensorError>) -> String {
            switch r {
            case .success(let impl): return impl
            case .failure(let reason): return "none (\(reason))"
            }
        }
        let onednnBF16 = describe(OneDNNPrecision.bf16.implementation), onednnF32 = describe(OneDNNPrecision.float32.implementation)
        let onednnVersion = "\(tc_dnnl_version() / 10000).\(tc_dnnl_version() / 100 % 100).\(tc_dnnl_version() % 100)"
        let report: [String: Any] = [
            "cpu": cpu.description,
            "openblas_core": core,
            "preferred_core": preferred ?? "none",
            "openblas_coretype_env": ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "",
            "restarted": ProcessInfo.processInfo.environment[OpenBLASCoreSelection.restartMarker] != nil,
            "openblas_threads": Int(openblasThreads()),
            "sgemm_checks_passed": checked,
            "sgemm_failure": failure ?? "",
            "hdf5_version": "\(h5 / 10000).\(h5 / 100 % 100).\(h5 % 100)",
            "cores": ProcessInfo.processInfo.activeProcessorCount,
            "cpu_detected": CPUFeatures.detected.description,
            "cpu_simulated": CPUFeatures.isSimulated,
            "bf16_kernel": "\(BF16Matrix.defaultKernel)",
            "weights_auto": automatic.storage.rawValue,
            "weights_auto_notice": automatic.notice,
            "weights_auto_inference": inference.storage.rawValue,
            "weights_auto_inference_notice": inference.notice,
            "omp_wait_policy": openMP.waitPolicy,
            "omp_wait_policy_source": openMP.source,
            "subnormals_flushed": SubnormalFlushing.isOnForCurrentThread,
            "subnormals_pool_threads": pool.threads, "subnormals_pool_flushing": pool.flushing,
            "subnormals_openmp_threads": openMPFlushing?.threads ?? 0, "subnormals_openmp_flushing": openMPFlushing?.flushing ?? 0,
            "subnormals_openblas_restarted": SubnormalFlushing.openBLASThreadsRestarted,
            "onednn_version": onednnVersion,
            "onednn_isa": String(cString: tc_dnnl_effective_isa()),
            "onednn_bf16_matmul": onednnBF16,
            "onednn_f32_matmul": onednnF32,
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("CPU              \(cpu)")
            if CPUFeatures.isSimulated {
                print("                 (simulated by \(CPUFeatures.overrideVariable); detected: \(CPUFeatures.detected))")
            }
            print("OpenBLAS core    \(core) (preferred for this CPU: \(preferred ?? "any"))")
            print("BLAS threads     \(openblasThreads())")
            print("HDF5             \(report["hdf5_version"]!)")
            print("bf16 kernel      \(BF16Matrix.defaultKernel) (used by weights: bf16)")
            print("weights: auto    training: \(automatic.storage.rawValue): \(automatic.notice)")
            print("                 eval, generate, chat, serve: \(inference.storage.rawValue): \(inference.notice)")
            let openMPText = openMPFlushing.map { "\($0.flushing) of \($0.threads) OpenMP threads" } ?? "no OpenMP runtime"
            print("subnormals       flushed to zero (FTZ and DAZ): main thread \(SubnormalFlushing.isOnForCurrentThread ? "yes" : "NO"), \(pool.flushing) of \(pool.threads) pool threads, \(openMPText), OpenBLAS threads \(SubnormalFlushing.openBLASThreadsRestarted ? "restarted from a flushing thread" : "NOT restarted")")
            print("OpenMP waits     \(openMP.waitPolicy) (\(openMP.source))")
            print("oneDNN           \(onednnVersion), ISA \(String(cString: tc_dnnl_effective_isa())) (cap it with ONEDNN_MAX_CPU_ISA)")
            print("  bf16 matmul    \(onednnBF16) (weights: onednn-bf16)")
            print("  f32 matmul     \(onednnF32)")
            if case .success = OneDNNPrecision.bf16.implementation {
                // SmolLM2-135M's products at 512 tokens: forward (in -> out) and input gradient (out -> in).
                for (name, inF, out) in [("q/o_proj", 576, 576), ("k/v_proj", 576, 192), ("gate/up_proj", 576, 1536),
                                         ("down_proj", 1536, 576), ("head chunk", 576, 8192)] {
                    var forward = [CChar](repeating: 0, count: 128), backward = [CChar](repeating: 0, count: 128)
                    _ = tc_dnnl_probe(OneDNNPrecision.bf16.rawValue, 512, Int64(inF), Int64(out), &forward, forward.count)
                    _ = tc_dnnl_probe(OneDNNPrecision.bf16.rawValue, 512, Int64(out), Int64(inF), &backward, backward.count)
                    print("    \(name.padding(toLength: 13, withPad: " ", startingAt: 0)) forward \(String(cString: forward)), input gradient \(String(cString: backward))")
                }
            }
            print(failure.map { "sgemm check      FAILED: \($0)" } ?? "sgemm check      \(checked) products match the reference")
        }
        if failure != nil { throw ExitCode(1) }
    }
}
