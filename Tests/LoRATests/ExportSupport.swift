import Autodiff
import Foundation
import LoRA
import Models
import Tensors
import XCTest

/// Paths and helpers shared by the export and import tests.
enum ExportFixtures {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func path(_ relative: String) -> String { packageRoot.appendingPathComponent(relative).path }

    /// The real base model, or a skip when it has not been fetched.
    static func smolLM2() throws -> String {
        let p = path("checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf")
        guard FileManager.default.fileExists(atPath: p) else {
            throw XCTSkip("base model not found: run scripts/fetch-model.sh to fetch the base model")
        }
        return p
    }

    /// A fresh directory that is removed when `test` finishes.
    static func temporaryDirectory(removedAfter test: XCTestCase) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tc-export-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }
}

/// Full-vocabulary logits for every position of one sequence.
func allLogits(_ model: TransformerModel, _ tokens: [Int32]) throws -> Tensor {
    let layout = try PackedSequences(batch: 1, seqLen: tokens.count)
    let h = try model.hiddenStates(Tape(recording: false), tokens: tokens, context: .packed(layout))
    return model.logits(hidden: h.value, rows: Array(tokens.indices))
}

/// max |a - b| / max(1, max |b|): "relative" in the sense of the logits' scale.
func maxRelativeDifference(_ a: Tensor, _ b: Tensor) -> Float {
    var worst: Float = 0, scale: Float = 1
    for i in 0..<b.count { scale = max(scale, abs(b[flat: i])) }
    for i in 0..<a.count { worst = max(worst, abs(a[flat: i] - b[flat: i])) }
    return worst / scale
}

/// 64-bit FNV-1a, as scripts/reference/make_peft_fixtures.py computes it.
func fnv1a64(_ data: Data) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in data { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return "fnv1a64:" + String(h, radix: 16)
}
