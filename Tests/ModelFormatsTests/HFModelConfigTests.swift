import Foundation
import XCTest
@testable import ModelFormats

final class HFModelConfigTests: XCTestCase {
    private func decode(_ json: String) throws -> HFModelConfig { try HFModelConfig(jsonData: Data(json.utf8)) }

    // SmolLM2-135M-Instruct's config.json (abridged to the fields that matter).
    let smolLM2 = """
    {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 1, "eos_token_id": 2,
     "hidden_act": "silu", "hidden_size": 576, "initializer_range": 0.041666666666666664,
     "intermediate_size": 1536, "max_position_embeddings": 8192, "mlp_bias": false, "model_type": "llama",
     "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3, "pad_token_id": 2,
     "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 100000, "tie_word_embeddings": true,
     "torch_dtype": "bfloat16", "vocab_size": 49152}
    """

    func testParsesALlamaConfig() throws {
        let config = try decode(smolLM2)
        XCTAssertEqual(config.architecture, .llama)
        XCTAssertEqual(config.hiddenSize, 576)
        XCTAssertEqual(config.intermediateSize, 1536)
        XCTAssertEqual(config.numHiddenLayers, 30)
        XCTAssertEqual(config.numAttentionHeads, 9)
        XCTAssertEqual(config.numKeyValueHeads, 3)
        XCTAssertEqual(config.headDimension, 64)
        XCTAssertEqual(config.rmsNormEps, 1e-5)
        XCTAssertEqual(config.ropeTheta, 100000)
        XCTAssertNil(config.ropeScaling)
        XCTAssertTrue(config.tieWordEmbeddings)
        XCTAssertEqual(config.maxPositionEmbeddings, 8192)
        XCTAssertFalse(config.hasQKVBias)
        XCTAssertEqual(config.bosTokenId, 1)
        XCTAssertEqual(config.eosTokenIds, [2])
        XCTAssertEqual(config.torchDtype, "bfloat16")
    }

    func testQwen2AlwaysHasQKVBias() throws {
        let config = try decode("""
        {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "intermediate_size": 4864,
         "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
         "rope_theta": 1000000.0, "vocab_size": 151936, "tie_word_embeddings": true, "max_position_embeddings": 32768,
         "bos_token_id": 151643, "eos_token_id": 151645, "torch_dtype": "bfloat16", "sliding_window": 32768}
        """)
        XCTAssertEqual(config.architecture, .qwen2)
        XCTAssertTrue(config.hasQKVBias)
        XCTAssertEqual(config.headDimension, 64)
    }

    func testQwen3UsesExplicitHeadDimAndQKNorm() throws {
        let config = try decode("""
        {"architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "head_dim": 128, "hidden_size": 1024,
         "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
         "rms_norm_eps": 1e-06, "rope_theta": 1000000, "vocab_size": 151936, "tie_word_embeddings": true,
         "max_position_embeddings": 40960, "eos_token_id": 151645, "torch_dtype": "bfloat16"}
        """)
        XCTAssertEqual(config.architecture, .qwen3)
        XCTAssertEqual(config.headDimension, 128)
        XCTAssertTrue(config.hasQKNorm)
        XCTAssertFalse(config.hasQKVBias)
    }

    func testEOSTokenListsAndRopeScalingAreAccepted() throws {
        let json = smolLM2.replacingOccurrences(of: "\"eos_token_id\": 2", with: "\"eos_token_id\": [128001, 128009]")
            .replacingOccurrences(of: "\"vocab_size\": 49152", with: "\"vocab_size\": 128256")
            .replacingOccurrences(of: "\"rope_scaling\": null", with: "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 32.0}")
        let config = try decode(json)
        XCTAssertEqual(config.eosTokenIds, [128001, 128009])
        XCTAssertEqual(config.ropeScaling?["rope_type"]?.stringValue, "llama3")
        XCTAssertEqual(config.ropeScaling?["factor"]?.doubleValue, 32)
    }

    func testAnEOSIdOutsideTheVocabularyIsRefused() {
        XCTAssertThrowsError(try decode(smolLM2.replacingOccurrences(of: "\"eos_token_id\": 2", with: "\"eos_token_id\": -1"))) {
            XCTAssertEqual($0 as? HFConfigError, .invalidValue(field: "eos_token_id", reason: "-1 is not a token id (0..<49152)"))
        }
    }

    func testAnRMSNormEpsilonThatIsNotSmallAndFiniteIsRefused() {
        XCTAssertThrowsError(try decode(smolLM2.replacingOccurrences(of: "\"rms_norm_eps\": 1e-05", with: "\"rms_norm_eps\": 1e308"))) {
            XCTAssertEqual(($0 as? HFConfigError).map { "\($0)" }?.contains("rms_norm_eps"), true, "\($0)")
        }
    }

    func testARopeThetaThatIsNotANumberIsRefused() {
        let json = smolLM2.replacingOccurrences(of: "\"rope_theta\": 100000", with: "\"rope_parameters\": {\"rope_theta\": \"fast\", \"rope_type\": \"default\"}")
        XCTAssertThrowsError(try decode(json)) { XCTAssertTrue("\($0)".contains("rope_theta"), "\($0)") }
    }

    func testUnsupportedArchitectureIsNamedWithTheSupportedList() {
        let json = smolLM2.replacingOccurrences(of: "LlamaForCausalLM", with: "MistralForCausalLM")
        XCTAssertThrowsError(try decode(json)) { error in
            XCTAssertEqual(error as? HFConfigError, .unsupportedArchitecture(
                found: ["MistralForCausalLM"], supported: ["LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"]))
            XCTAssertTrue("\(error)".contains("MistralForCausalLM") && "\(error)".contains("Qwen3ForCausalLM"))
        }
    }

    func testMissingRequiredFieldIsNamed() {
        let json = smolLM2.replacingOccurrences(of: "\"hidden_size\": 576,", with: "")
        XCTAssertThrowsError(try decode(json)) { XCTAssertEqual($0 as? HFConfigError, .invalidValue(field: "hidden_size", reason: "missing")) }
    }

    func testInconsistentHeadCountsAreRejected() {
        let json = smolLM2.replacingOccurrences(of: "\"num_key_value_heads\": 3", with: "\"num_key_value_heads\": 4")
        XCTAssertThrowsError(try decode(json)) {
            guard case .invalidValue(field: "num_key_value_heads", _)? = $0 as? HFConfigError else { return XCTFail("\($0)") }
        }
    }

    func testReadsFromAFile() throws {
        let p = NSTemporaryDirectory() + "config-\(UUID().uuidString).json"
        try Data(smolLM2.utf8).write(to: URL(fileURLWithPath: p))
        defer { try? FileManager.default.removeItem(atPath: p) }
        XCTAssertEqual(try HFModelConfig(contentsOf: p).vocabSize, 49152)
        XCTAssertThrowsError(try HFModelConfig(contentsOf: p + ".missing"))
    }
}
