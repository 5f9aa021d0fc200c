import Tensors
import XCTest

/// Where oneDNN computes, its OpenMP threads are told to sleep while the pool works and to be
/// as many as the pool's threads; the user's own settings always win (docs/architecture.md).
final class OpenMPThreadingTests: XCTestCase {
    let avx2Only = CPUFeatures(vendor: "AuthenticAMD", family: 25, model: 1, avx: true, avx2: true, fma: true, osSavesAVX: true)
    var zen4: CPUFeatures {
        var cpu = avx2Only
        cpu.avx512f = true; cpu.avx512bw = true; cpu.avx512vl = true; cpu.avx512dq = true; cpu.avx512cd = true
        cpu.avx512bf16 = true; cpu.osSavesAVX512 = true
        return cpu
    }
    var xeon: CPUFeatures {
        var cpu = zen4
        cpu.amxTile = true; cpu.amxBF16 = true
        return cpu
    }

    func testAnAMXXeonGetsPassiveWaitsAndThePoolsThreadCount() {
        let changes = OpenMPThreading.environment(for: xeon, current: [:], poolThreads: 2)
        XCTAssertEqual(changes, ["OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "2"])
    }

    func testAVX512BF16WithoutAMXIsLeftAloneBecauseAutoDoesNotPickOneDNNThere() {
        XCTAssertEqual(OpenMPThreading.environment(for: zen4, current: [:], poolThreads: 4), [:])
    }

    func testAnAVX2OnlyCPUIsLeftAloneBecauseOneDNNDoesNotComputeThere() {
        XCTAssertEqual(OpenMPThreading.environment(for: avx2Only, current: [:], poolThreads: 2), [:])
    }

    func testTheUsersSettingsAreNeverOverridden() {
        let changes = OpenMPThreading.environment(for: xeon, current: ["OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "1"], poolThreads: 2)
        XCTAssertEqual(changes, [:])
        let partly = OpenMPThreading.environment(for: xeon, current: ["OMP_WAIT_POLICY": "ACTIVE"], poolThreads: 3)
        XCTAssertEqual(partly, ["OMP_NUM_THREADS": "3"])
    }

    func testARankOfAnMPIJobGetsItsShareOfTheCores() {
        let threads = ThreadPool.threadsPerProcess(["OMP_WAIT_POLICY_UNUSED": "", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"], cores: 8, machineCores: 8)
        XCTAssertEqual(OpenMPThreading.environment(for: xeon, current: [:], poolThreads: threads)["OMP_NUM_THREADS"], "4")
    }
}
