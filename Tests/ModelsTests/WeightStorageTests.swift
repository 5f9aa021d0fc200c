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

    func testAnAMXXeonKeepsFloat32BecauseTheBF16KernelMeasuredSlowerThere() {
        let (storage, notice) = WeightStorage.automatic(for: emeraldRapids)
        XCTAssertEqual(storage, .float32)
        XCTAssertTrue(notice.hasPrefix("bf16 path off: AMX present, but this build has no AMX kernel"), notice)
        XCTAssertTrue(notice.contains("force it with weights: bf16"), notice)
    }

    func testAVX512BF16WithoutAMXPicksBF16() {
        let (storage, notice) = WeightStorage.automatic(for: zen4)
        XCTAssertEqual(storage, .bf16)
        XCTAssertTrue(notice.hasPrefix("bf16 path on: AVX512_BF16 without AMX"), notice)
        XCTAssertTrue(notice.contains("force Float32 with weights: float32"), notice)
    }

    func testAVX512BF16WithoutOSSupportForAVX512KeepsFloat32() {
        var cpu = zen4
        cpu.osSavesAVX512 = false
        XCTAssertEqual(WeightStorage.automatic(for: cpu).storage, .float32)
    }

    func testAnAVX2OnlyCPUKeepsFloat32BecauseBF16WouldBeEmulated() {
        let (storage, notice) = WeightStorage.automatic(for: avx2Only)
        XCTAssertEqual(storage, .float32)
        XCTAssertTrue(notice.hasPrefix("bf16 path off: no AVX512_BF16, so bf16 products would be emulated with AVX2"), notice)
    }

    func testACPUWithoutAVX2KeepsFloat32() {
        let (storage, notice) = WeightStorage.automatic(for: CPUFeatures())
        XCTAssertEqual(storage, .float32)
        XCTAssertTrue(notice.hasPrefix("bf16 path off: no AVX2 or AVX512_BF16"), notice)
    }
}
