import Models
import Tensors
import XCTest

/// What `model.weights: auto` stands for on each CPU class, decided from the features alone so
/// that every branch runs on any machine.
final class WeightStorageTests: XCTestCase {
    let avx2Only = CPUFeatures(vendor: "AuthenticAMD", family: 25, model: 1, avx: true, avx2: true, fma: true, osSavesAVX: true)
    var zen4: CPUFeatures {
        var cpu = avx2Only
        cpu.model = 17
        cpu.avx512f = true; cpu.avx512bw = true; cpu.avx512vl = true; cpu.avx512dq = true; cpu.avx512cd = true
        cpu.avx512bf16 = true; cpu.osSavesAVX512 = true
        return cpu
    }
    var emeraldRapids: CPUFeatures {
        var cpu = zen4
        cpu.vendor = "GenuineIntel"; cpu.family = 6; cpu.model = 207
        cpu.amxTile = true; cpu.amxBF16 = true
        return cpu
    }

    let oneDNNHasBF16: Result<String, TensorError> = .success("brg:avx512_core_amx_bf16")
    let oneDNNLacksBF16: Result<String, TensorError> = .failure(.invalidArgument(op: "OneDNNMatrix", message: "unimplemented on this CPU"))

    func testAnAMXXeonTrainsOnOneDNNBF16WhereItMeasuredFastest() {
        let (storage, notice) = WeightStorage.automatic(for: emeraldRapids, oneDNNBF16: oneDNNHasBF16)
        XCTAssertEqual(storage, .onednnBF16)
        XCTAssertTrue(notice.contains("brg:avx512_core_amx_bf16"), notice)
        XCTAssertTrue(notice.contains("1.43-1.79x faster than Float32"), notice)
        XCTAssertTrue(notice.contains("force Float32 with weights: float32"), notice)
    }

    func testAnAMXCPUWhoseOneDNNHasNoBF16KeepsFloat32AndSaysWhy() {
        let (storage, notice) = WeightStorage.automatic(for: emeraldRapids, oneDNNBF16: oneDNNLacksBF16)
        XCTAssertEqual(storage, .float32)
        XCTAssertTrue(notice.contains("AMX present, but oneDNN cannot run bf16 matmul here (OneDNNMatrix: unimplemented on this CPU)"), notice)
    }

    func testAVX512BF16WithoutAMXPicksBF16() {
        let (storage, notice) = WeightStorage.automatic(for: zen4, oneDNNBF16: oneDNNHasBF16)
        XCTAssertEqual(storage, .bf16)
        XCTAssertTrue(notice.contains("AVX512_BF16 without AMX"), notice)
        XCTAssertTrue(notice.contains("not measured on this class yet"), notice)
        XCTAssertTrue(notice.contains("force Float32 with weights: float32"), notice)
    }

    func testInferenceOnAnAMXXeonDecodesQuantizedAndPrefillsOnOneDNNBF16() {
        let (storage, notice) = WeightStorage.automaticForInference(for: emeraldRapids, oneDNNBF16: oneDNNHasBF16)
        XCTAssertEqual(storage, .quantizedWithOneDNNPrefill)
        XCTAssertEqual(storage.rawValue, "quantized+onednn-bf16")
        XCTAssertTrue(notice.contains("263.5 tok/s at batch 1"), notice)
        XCTAssertTrue(notice.contains("prefill 1x128 1866 tok/s, quantized 772"), notice)
    }

    func testInferenceKeepsOneQuantizedCopyOnEveryOtherCPUClass() {
        for cpu in [zen4, avx2Only, CPUFeatures()] {
            XCTAssertEqual(WeightStorage.automaticForInference(for: cpu, oneDNNBF16: oneDNNHasBF16).storage, .quantized, "\(cpu)")
        }
        let (storage, notice) = WeightStorage.automaticForInference(for: emeraldRapids, oneDNNBF16: oneDNNLacksBF16)
        XCTAssertEqual(storage, .quantized)
        XCTAssertTrue(notice.contains("oneDNN cannot run bf16 matmul here"), notice)
    }

    func testAVX512BF16WithoutOSSupportForAVX512KeepsFloat32() {
        var cpu = zen4
        cpu.osSavesAVX512 = false
        XCTAssertEqual(WeightStorage.automatic(for: cpu).storage, .float32)
    }

    func testAnAVX2OnlyCPUKeepsFloat32BecauseBF16WouldBeEmulated() {
        let (storage, notice) = WeightStorage.automatic(for: avx2Only)
        XCTAssertEqual(storage, .float32)
        XCTAssertTrue(notice.hasPrefix("frozen weights Float32: no AVX512_BF16, so bf16 products would be emulated with AVX2"), notice)
    }

    func testACPUWithoutAVX2KeepsFloat32() {
        let (storage, notice) = WeightStorage.automatic(for: CPUFeatures())
        XCTAssertEqual(storage, .float32)
        XCTAssertTrue(notice.hasPrefix("frozen weights Float32: no AVX2 or AVX512_BF16"), notice)
    }
}
