import CKernels
import Foundation

/// What the processor reports through cpuid, and what the OS saves on context switches.
///
/// `current` is what the toolkit's decisions see (`model.weights: auto`, the bf16 kernel,
/// `thoughtcrime doctor`): the detected features with `THOUGHTCRIME_CPU_FEATURES` applied, so
/// one machine can act out another CPU class. Kernels never use a feature the CPU lacks.
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

    /// The name of the environment variable that hides or adds features: a comma-separated
    /// list of `-name` or `+name`, names from `CPUFeatures.overridableNames`, e.g.
    /// `THOUGHTCRIME_CPU_FEATURES=-amx,-avx512_bf16`.
    public static let overrideVariable = "THOUGHTCRIME_CPU_FEATURES"

    /// Feature names `THOUGHTCRIME_CPU_FEATURES` understands. `avx512` stands for the
    /// foundation and the BW/VL/DQ/CD subsets with OS support; `amx` for AMX-TILE and AMX-BF16.
    public static let overridableNames = ["avx", "avx2", "fma", "avx512", "avx512_bf16", "amx", "amx_tile", "amx_bf16"]

    /// The detected features with `THOUGHTCRIME_CPU_FEATURES` applied (unchanged when the
    /// variable is unset; a malformed value is reported once on stderr and ignored).
    public static let current: CPUFeatures = {
        guard let spec = ProcessInfo.processInfo.environment[overrideVariable], !spec.isEmpty else { return detected }
        do {
            return try detected.applying(spec)
        } catch {
            FileHandle.standardError.write(Data("warning: \(error); using the detected CPU features\n".utf8))
            return detected
        }
    }()

    /// True when `THOUGHTCRIME_CPU_FEATURES` changed what `current` reports.
    public static var isSimulated: Bool { current != detected }

    /// This feature set with `spec` applied: `-name` hides a feature, `+name` adds one.
    ///
    /// Usage: `let noAMX = try CPUFeatures.current.applying("-amx")`
    public func applying(_ spec: String) throws -> CPUFeatures {
        var result = self
        for item in spec.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            guard let sign = item.first, sign == "+" || sign == "-" else {
                throw TensorError.invalidArgument(op: Self.overrideVariable, message: "'\(item)' must start with + (add) or - (hide), e.g. -amx")
            }
            let on = sign == "+", name = item.dropFirst().lowercased()
            switch name {
            case "avx": result.avx = on; result.osSavesAVX = on || result.osSavesAVX
            case "avx2": result.avx2 = on
            case "fma": result.fma = on
            case "avx512":
                result.avx512f = on; result.avx512bw = on; result.avx512vl = on; result.avx512dq = on; result.avx512cd = on
                if on { result.osSavesAVX512 = true }
            case "avx512_bf16": result.avx512bf16 = on
            case "amx": result.amxTile = on; result.amxBF16 = on
            case "amx_tile": result.amxTile = on
            case "amx_bf16": result.amxBF16 = on
            default:
                throw TensorError.invalidArgument(
                    op: Self.overrideVariable, message: "unknown feature '\(name)' (known: \(Self.overridableNames.joined(separator: ", ")))")
            }
        }
        return result
    }

    /// The features of the processor this process runs on, as cpuid and XCR0 report them.
    public static let detected: CPUFeatures = {
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

    /// AMX tiles with bf16 products (the OS grant is checked separately, `tc_amx_request`).
    public var hasAMX: Bool { amxTile && amxBF16 }

    /// AVX-512 with the bf16 dot-product instruction.
    public var hasAVX512BF16: Bool { hasAVX512 && avx512bf16 }

    public var description: String {
        var flags: [String] = []
        if avx && osSavesAVX { flags.append("avx") }
        if avx2 { flags.append("avx2") }
        if fma { flags.append("fma") }
        if hasAVX512 { flags.append("avx512") }
        if avx512bf16 { flags.append("avx512_bf16") }
        if amxTile { flags.append("amx_tile") }
        if amxBF16 { flags.append("amx_bf16") }
        if hasAMX && !osSavesAVX512 { flags.append("(no OS AVX-512 state)") }
        return "\(vendor) family \(family) model \(model) [\(flags.joined(separator: " "))]"
    }
}
