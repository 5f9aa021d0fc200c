import Autodiff
import Foundation
import ModelFormats
import Models
import Tensors
import TestSupport
import XCTest

final class ModelLoaderTests: XCTestCase {
    func allLogits(_ model: TransformerModel, _ ids: [Int32]) throws -> Tensor {
        let layout = try PackedSequences(batch: 1, seqLen: ids.count)
        let h = try model.hiddenStates(Tape(recording: false), tokens: ids, context: .packed(layout))
        return model.logits(hidden: h.value, rows: Array(ids.indices))
    }

    func assertMatches(_ model: TransformerModel, _ fixture: TinyLogitsFixture, accuracy: Float, file: StaticString = #filePath, line: UInt = #line) throws {
        for seq in fixture.sequences {
            let logits = try allLogits(model, seq.input_ids)
            var worst: Float = 0
            for (p, row) in seq.logits.enumerated() {
                for (v, expected) in row.enumerated() { worst = max(worst, abs(logits[p, v] - expected)) }
            }
            XCTAssertLessThanOrEqual(worst, accuracy, "max abs logit difference", file: file, line: line)
        }
    }

    /// A Llama GGUF stores q/k rows permuted (convert_hf_to_gguf); the loader undoes it, so the
    /// model computes what transformers computes from the original checkpoint.
    func testLlamaGGUFGivesTheSameLogitsAsTheHuggingFaceCheckpoint() throws {
        let loaded = try ModelLoader.load(path: try ConvertedGGUF.tinyLlama(q8_0: false, from: Fixtures.url("tiny-llama").path))
        XCTAssertEqual(loaded.model.config.architecture, .llama)
        XCTAssertFalse(loaded.model.config.tiedEmbeddings)
        try assertMatches(loaded.model, try Fixtures.json("tiny-llama/logits.json", as: TinyLogitsFixture.self), accuracy: 1e-4)
    }

    func testQuantizedAndDequantizedStorageGiveTheSameLogits() throws {
        let fixture = try Fixtures.json("tiny-llama-q8_0_logits.json", as: TinyLogitsFixture.self)
        let path = try ConvertedGGUF.tinyLlama(q8_0: true, from: Fixtures.url("tiny-llama").path)
        let dense = try ModelLoader.load(path: path, weights: .float32)
        let quantized = try ModelLoader.load(path: path, weights: .quantized)
        XCTAssertTrue(quantized.model.blocks[0].attention.q.weight is QuantizedMatrix)
        XCTAssertLessThan(quantized.model.weightBytes, dense.model.weightBytes)
        try assertMatches(dense.model, fixture, accuracy: 1e-4)
        try assertMatches(quantized.model, fixture, accuracy: 1e-4)
        XCTAssertEqual(dense.fingerprint, quantized.fingerprint)
    }

    /// `quantized+onednn-bf16` keeps each projection twice: quantised blocks for decoding and a
    /// oneDNN bf16 copy for prefill. Where oneDNN has no bf16 matmul it is refused with the reason.
    func testThePrefillDecodePairKeepsQuantizedBlocksAndAOneDNNCopy() throws {
        let path = try ConvertedGGUF.tinyLlama(q8_0: true, from: Fixtures.url("tiny-llama").path)
        guard case .success = OneDNNPrecision.bf16.implementation else {
            XCTAssertThrowsError(try ModelLoader.load(path: path, weights: .quantizedWithOneDNNPrefill)) { error in
                XCTAssertTrue("\(error)".contains("weights: quantized+onednn-bf16 cannot run here"), "\(error)")
            }
            return
        }
        let pair = try ModelLoader.load(path: path, weights: .quantizedWithOneDNNPrefill)
        let quantized = try ModelLoader.load(path: path, weights: .quantized)
        let q = try XCTUnwrap(pair.model.blocks[0].attention.q.weight as? PrefillDecodeMatrix)
        XCTAssertTrue(q.decode is QuantizedMatrix)
        XCTAssertTrue(q.prefill is OneDNNMatrix)
        XCTAssertNotNil(pair.model.inferenceHead, "decoding reads the quantised head")
        XCTAssertEqual(pair.fingerprint, quantized.fingerprint)
        let ids = (0..<40).map { Int32($0 % 50 + 3) }
        let a = try allLogits(pair.model, ids), b = try allLogits(quantized.model, ids)
        var worst: Float = 0
        for i in 0..<a.count { worst = max(worst, abs(a[flat: i] - b[flat: i])) }
        XCTAssertLessThan(worst, 0.05, "bf16 prefill against the quantised products")
    }

    func testGGUFToHFRowOrderInvertsConvertHFToGGUFsPermute() {
        // head dim 4: GGUF rows (0,1,2,3) hold HF rows (0,2,1,3)
        XCTAssertEqual(ModelLoader.ggufToHFRowOrder(heads: 2, headDim: 4), [0, 2, 1, 3, 4, 6, 5, 7])
    }

    func testMissingPathFailsSayingWhatWasExpected() {
        XCTAssertThrowsError(try ModelLoader.load(path: "/nonexistent/model.gguf")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/model.gguf: no such file"), "\(error)")
        }
    }

    func testUnsupportedArchitectureIsNamed() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tc-arch-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = GGUFWriter()
        try writer.setMetadata("general.architecture", .string("mamba"))
        try writer.write(to: path)
        XCTAssertThrowsError(try ModelLoader.load(path: path)) { error in
            XCTAssertTrue("\(error)".contains("architecture 'mamba'"), "\(error)")
        }
    }
}

/// Hugging Face safetensors checkpoints made by transformers (tiny random models).
final class SafetensorsModelTests: XCTestCase {
    func check(_ directory: String, architecture: ModelArchitecture, logits: String) throws {
        let loaded = try ModelLoader.load(path: Fixtures.url(directory).path)
        XCTAssertEqual(loaded.model.config.architecture, architecture)
        XCTAssertEqual(loaded.source, .safetensors)
        let fixture = try Fixtures.json(logits, as: TinyLogitsFixture.self)
        for seq in fixture.sequences {
            let layout = try PackedSequences(batch: 1, seqLen: seq.input_ids.count)
            let h = try loaded.model.hiddenStates(Tape(recording: false), tokens: seq.input_ids, context: .packed(layout))
            let out = loaded.model.logits(hidden: h.value, rows: Array(seq.input_ids.indices))
            var worst: Float = 0
            for (p, row) in seq.logits.enumerated() { for (v, e) in row.enumerated() { worst = max(worst, abs(out[p, v] - e)) } }
            XCTAssertLessThanOrEqual(worst, 1e-4, "\(directory)")
        }
    }

    func testLlamaWithUntiedHead() throws { try check("tiny-llama", architecture: .llama, logits: "tiny-llama/logits.json") }

    func testShardedLlamaLoadsThroughItsIndex() throws {
        try check("tiny-llama-sharded", architecture: .llama, logits: "tiny-llama/logits.json")
        XCTAssertEqual(
            try ModelLoader.load(path: Fixtures.url("tiny-llama-sharded").path).fingerprint,
            try ModelLoader.load(path: Fixtures.url("tiny-llama").path).fingerprint)
    }

    /// Issue 16, item 8: the fingerprint of a safetensors folder was the hash of nothing, so a
    /// resume on another model went unnoticed.
    func testSafetensorsFingerprintChangesWithAnyWeightByte() throws {
        let original = try ModelLoader.load(path: Fixtures.url("tiny-llama").path).fingerprint
        XCTAssertNotEqual(original, "fnv1a64:cbf29ce484222325", "the hash of no bytes")
        XCTAssertNotEqual(original, try ModelLoader.load(path: Fixtures.url("tiny-qwen2").path).fingerprint)

        let copy = try TinyModelFile.scratch("tc-fingerprint")
        defer { try? FileManager.default.removeItem(atPath: copy) }
        for name in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: Fixtures.url("tiny-llama/\(name)").path, toPath: "\(copy)/\(name)")
        }
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(copy)/model.safetensors")))
        bytes[bytes.count - 3] ^= 0x01  // the last tensor's data, past the header
        try Data(bytes).write(to: URL(fileURLWithPath: "\(copy)/model.safetensors"))
        XCTAssertNotEqual(try ModelLoader.load(path: copy).fingerprint, original)
    }

    /// A copy of tiny-llama whose config.json is edited by `config` and whose safetensors
    /// bytes by `weights` (issue 29: nonsense that used to load).
    private func editedTinyLlama(config: (String) -> String = { $0 }, weights: (inout [UInt8]) -> Void = { _ in }) throws -> String {
        let copy = try TinyModelFile.scratch("tc-nonsense")
        let text = try String(contentsOf: Fixtures.url("tiny-llama/config.json"), encoding: .utf8)
        try config(text).write(toFile: "\(copy)/config.json", atomically: true, encoding: .utf8)
        var bytes = [UInt8](try Data(contentsOf: Fixtures.url("tiny-llama/model.safetensors")))
        weights(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: "\(copy)/model.safetensors"))
        return copy
    }

    func testALayerTheConfigDoesNotCountIsRefusedNamingItsTensors() throws {
        let copy = try editedTinyLlama(config: { $0.replacingOccurrences(of: "\"num_hidden_layers\": 2", with: "\"num_hidden_layers\": 1") })
        defer { try? FileManager.default.removeItem(atPath: copy) }
        XCTAssertThrowsError(try ModelLoader.load(path: copy)) {
            XCTAssertTrue("\($0)".contains("tensors are not used by the architecture (num_hidden_layers 1): 'model.layers.1."), "\($0)")
        }
    }

    func testTiedEmbeddingsBesideAnOwnHeadAreRefused() throws {
        let copy = try editedTinyLlama(config: { $0.replacingOccurrences(of: "\"tie_word_embeddings\": false", with: "\"tie_word_embeddings\": true") })
        defer { try? FileManager.default.removeItem(atPath: copy) }
        XCTAssertThrowsError(try ModelLoader.load(path: copy)) {
            XCTAssertTrue("\($0)".contains("tie_word_embeddings is true, but the weights hold their own lm_head.weight"), "\($0)")
        }
    }

    func testANaNWeightIsRefusedNamingTheTensor() throws {
        // The file's last four bytes are the last element of model.norm.weight (float32).
        let copy = try editedTinyLlama(weights: { $0.replaceSubrange(($0.count - 4)..., with: [0x00, 0x00, 0xC0, 0x7F]) })
        defer { try? FileManager.default.removeItem(atPath: copy) }
        XCTAssertThrowsError(try ModelLoader.load(path: copy)) {
            XCTAssertTrue("\($0)".contains("tensor 'model.norm.weight' holds nan at element"), "\($0)")
        }
    }

    func testQwen2WithQKVBiasAndTiedEmbeddings() throws {
        try check("tiny-qwen2", architecture: .qwen2, logits: "tiny-qwen2/logits.json")
    }

    func testQwen3WithPerHeadQKNorm() throws {
        try check("tiny-qwen3", architecture: .qwen3, logits: "tiny-qwen3/logits.json")
    }

    func testUnsupportedArchitectureInConfigIsNamed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tc-cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"architectures": ["GPT2LMHeadModel"], "hidden_size": 8}"#.utf8).write(to: dir.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try ModelLoader.load(path: dir.path)) { error in
            XCTAssertTrue("\(error)".contains("GPT2LMHeadModel"), "\(error)")
        }
    }
}

/// Config values that load but make nonsense (issue 29): refused by `TransformerConfig.validate`
/// whichever file they came from (GGUF metadata or config.json).
final class TransformerConfigRangeTests: XCTestCase {
    private func config(eps: Float = 1e-5, rope: Float = 10_000) -> TransformerConfig {
        TransformerConfig(architecture: .llama, vocabSize: 32, hiddenSize: 16, intermediateSize: 32, layerCount: 1,
                          headCount: 2, kvHeadCount: 1, rmsNormEps: eps, ropeBase: rope)
    }

    func testAnInfiniteRMSNormEpsilonIsRefused() {
        XCTAssertThrowsError(try config(eps: .infinity).validate()) { XCTAssertTrue("\($0)".contains("RMS norm epsilon inf"), "\($0)") }
    }

    func testARopeBaseOfNaNIsRefused() {
        XCTAssertThrowsError(try config(rope: .nan).validate()) { XCTAssertTrue("\($0)".contains("rope base"), "\($0)") }
    }

    func testTheShippedModelsValuesAreAccepted() {
        XCTAssertNoThrow(try config(eps: 1e-5, rope: 100_000).validate())
        XCTAssertNoThrow(try config(eps: 1e-6, rope: 1_000_000).validate())
    }
}
