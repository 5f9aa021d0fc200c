import CKernels

/// What the processor reports through cpuid, and what the OS saves on context switches.
///
/// Usage: `let cpu = CPUFeatures.current; if cpu.hasAVX512 { ... }`
public struct CPUFeatures: Equatable, Sendable, CustomStringConvertible {
    public var vendor: String
    public var family: Int
    public var model: Int
    public var avx: Bool
    public var avx2: Bool
    public var fma: Bool
    public var avx512f: Bool
    public var avx512bw: Bool
    public var avx512vl: Bool
    public var avx512dq: Bool
    public var avx512cd: Bool
    public var avx512bf16: Bool
    public var amxTile: Bool
    public var amxBF16: Bool
    public var osSavesAVX: Bool
    public var osSavesAVX512: Bool

    public init(
        vendor: String = "unknown", family: Int = 0, model: Int = 0, avx: Bool = false,
        avx2: Bool = false, fma: Bool = false, avx512f: Bool = false, avx512bw: Bool = false,
        avx512vl: Bool = false, avx512dq: Bool = false, avx512cd: Bool = false,
        avx512bf16: Bool = false, amxTile: Bool = false, amxBF16: Bool = false,
        osSavesAVX: Bool = false, osSavesAVX512: Bool = false
    ) {
        self.vendor = vendor; self.family = family; self.model = model
        self.avx = avx; self.avx2 = avx2; self.fma = fma
        self.avx512f = avx512f; self.avx512bw = avx512bw; self.avx512vl = avx512vl
        self.avx512dq = avx512dq; self.avx512cd = avx512cd; self.avx512bf16 = avx512bf16
        self.amxTile = amxTile; self.amxBF16 = amxBF16
        self.osSavesAVX = osSavesAVX; self.osSavesAVX512 = osSavesAVX512
    }

    /// The features of the processor this process runs on.
    public static let current: CPUFeatures = {
        var info = tc_cpu_info()
        tc_cpu_detect(&info)
        return CPUFeatures(
            vendor: info.is_intel != 0 ? "GenuineIntel" : info.is_amd != 0 ? "AuthenticAMD" : "other",
            family: Int(info.family), model: Int(info.model), avx: info.avx != 0,
            avx2: info.avx2 != 0, fma: info.fma != 0, avx512f: info.avx512f != 0,
            avx512bw: info.avx512bw != 0, avx512vl: info.avx512vl != 0,
            avx512dq: info.avx512dq != 0, avx512cd: info.avx512cd != 0,
            avx512bf16: info.avx512_bf16 != 0, amxTile: info.amx_tile != 0,
            amxBF16: info.amx_bf16 != 0, osSavesAVX: info.os_saves_avx != 0,
            osSavesAVX512: info.os_saves_avx512 != 0)
    }()

    /// AVX-512 foundation plus the BW/VL/DQ/CD subsets OpenBLAS's SkylakeX kernels use, enabled by the OS.
    public var hasAVX512: Bool {
        avx512f && avx512bw && avx512vl && avx512dq && avx512cd && osSavesAVX512
    }

    public var description: String {
        var flags: [String] = []
        if avx && osSavesAVX { flags.append("avx") }
        if avx2 { flags.append("avx2") }
        if fma { flags.append("fma") }
        if hasAVX512 { flags.append("avx512") }
        if avx512bf16 { flags.append("avx512_bf16") }
        if amxTile { flags.append("amx_tile") }
        if amxBF16 { flags.append("amx_bf16") }
        return "\(vendor) family \(family) model \(model) [\(flags.joined(separator: " "))]"
    }
}
