import CKernels

/// The element types ggml stores tensors in, with the ids GGUF files use (ggml.h `ggml_type`).
/// Ids that ggml has retired (4, 5, 31-33, 36-38) are not cases, so files using them are
/// rejected as unknown.
///
/// Usage: `GGMLType.q4_K.bytesPerBlock == 144`
public enum GGMLType: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case f32 = 0, f16 = 1
    case q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22
    case iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28
    case iq1_m = 29
    case bf16 = 30
    case tq1_0 = 34, tq2_0 = 35
    case mxfp4 = 39, nvfp4 = 40, q1_0 = 41

    /// Number of weights stored together with shared scales (1 for plain types).
    public var blockSize: Int { traits.blockSize }
    /// Bytes one block occupies.
    public var bytesPerBlock: Int { traits.bytes }

    /// Whether `GGUFFile.dequantize` can convert this type to Float32.
    public var isSupportedForDequantization: Bool { tc_quant_is_supported(rawValue) != 0 }

    /// The ggml spelling, e.g. "Q4_K", "F16", "BF16".
    public var description: String { traits.name }

    // Sizes as in ggml's type traits table (ggml.c) and gguf-py's GGML_QUANT_SIZES.
    private var traits: (blockSize: Int, bytes: Int, name: String) {
        let k = 256  // QK_K, the super-block size of the K and IQ families
        switch self {
        case .f32: return (1, 4, "F32")
        case .f16: return (1, 2, "F16")
        case .q4_0: return (32, 2 + 16, "Q4_0")
        case .q4_1: return (32, 2 + 2 + 16, "Q4_1")
        case .q5_0: return (32, 2 + 4 + 16, "Q5_0")
        case .q5_1: return (32, 2 + 2 + 4 + 16, "Q5_1")
        case .q8_0: return (32, 2 + 32, "Q8_0")
        case .q8_1: return (32, 4 + 4 + 32, "Q8_1")
        case .q2_K: return (k, 2 + 2 + k / 16 + k / 4, "Q2_K")
        case .q3_K: return (k, 2 + k / 4 + k / 8 + 12, "Q3_K")
        case .q4_K: return (k, 2 + 2 + k / 2 + 12, "Q4_K")
        case .q5_K: return (k, 2 + 2 + k / 2 + k / 8 + 12, "Q5_K")
        case .q6_K: return (k, 2 + k / 2 + k / 4 + k / 16, "Q6_K")
        case .q8_K: return (k, 4 + k + k / 8, "Q8_K")
        case .iq2_xxs: return (k, 2 + k / 4, "IQ2_XXS")
        case .iq2_xs: return (k, 2 + k / 4 + k / 32, "IQ2_XS")
        case .iq3_xxs: return (k, 2 + k / 4 + k / 8, "IQ3_XXS")
        case .iq1_s: return (k, 2 + k / 8 + k / 16, "IQ1_S")
        case .iq4_nl: return (32, 2 + 16, "IQ4_NL")
        case .iq3_s: return (k, 2 + k / 4 + k / 8 + k / 32 + 4, "IQ3_S")
        case .iq2_s: return (k, 2 + k / 4 + k / 16, "IQ2_S")
        case .iq4_xs: return (k, 2 + 2 + k / 2 + k / 64, "IQ4_XS")
        case .i8: return (1, 1, "I8")
        case .i16: return (1, 2, "I16")
        case .i32: return (1, 4, "I32")
        case .i64: return (1, 8, "I64")
        case .f64: return (1, 8, "F64")
        case .iq1_m: return (k, k / 8 + k / 16 + k / 32, "IQ1_M")
        case .bf16: return (1, 2, "BF16")
        case .tq1_0: return (k, 2 + 4 * 13, "TQ1_0")
        case .tq2_0: return (k, 2 + 64, "TQ2_0")
        case .mxfp4: return (32, 1 + 16, "MXFP4")
        case .nvfp4: return (64, 4 + 32, "NVFP4")
        case .q1_0: return (128, 2 + 16, "Q1_0")
        }
    }
}
