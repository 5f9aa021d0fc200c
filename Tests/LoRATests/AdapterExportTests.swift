import Foundation
import LoRA
import ModelFormats
import Models
import Tensors
import TestSupport
import XCTest

/// Export and import on tiny models: PEFT, llama.cpp LoRA GGUF, merged models, refusals.
final class AdapterExportTests: XCTestCase {
    let tokens: [Int32] = [1, 17, 5, 99, 42, 8, 3, 64]
    static let tinyLlamaGGUF = (try? ConvertedGGUF.tinyLlama(q8_0: true, from: ExportFixtures.path("Tests/ModelsTests/Fixtures/tiny-llama"))) ?? "tiny-llama conversion failed"
    static let tinyQwen2 = ExportFixtures.path("Tests/ModelsTests/Fixtures/tiny-qwen2")

    func seeded(_ model: TransformerModel, rank: Int = 4, alpha: Float = 8, rsLoRA: Bool = false,
                targets: [String] = LoRASpec.allTargetModules, layers: [Int]? = nil, seed: UInt64 = 5) throws -> LoRAWeights {
        try LoRAWeights.seededRandom(
            for: model, spec: try LoRASpec(rank: rank, alpha: alpha, useRSLoRA: rsLoRA, targetModules: targets, layers: layers), seed: seed)
    }

    // MARK: PEFT

    func testPEFTExportWritesLongStandingConfigKeysAndPEFTTensorNames() throws {
        let model = try ModelLoader.load(path: Self.tinyLlamaGGUF).model
        let weights = try seeded(model, rank: 4, alpha: 8, rsLoRA: true, targets: ["q_proj", "down_proj"])
        let dir = try ExportFixtures.temporaryDirectory(removedAfter: self)
        try PEFTAdapterWriter.write(weights, to: dir, baseModel: "HuggingFaceTB/SmolLM2-135M-Instruct", layerCount: 2)

        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/adapter_config.json"))) as? [String: Any])
        XCTAssertEqual(Set(config.keys), ["peft_type", "task_type", "r", "lora_alpha", "lora_dropout", "target_modules", "bias",
                                          "fan_in_fan_out", "use_rslora", "use_dora", "inference_mode", "base_model_name_or_path"])
        XCTAssertEqual(config["peft_type"] as? String, "LORA")
        XCTAssertEqual(config["task_type"] as? String, "CAUSAL_LM")
        XCTAssertEqual(config["r"] as? Int, 4)
        XCTAssertEqual(config["lora_alpha"] as? Int, 8)
        XCTAssertEqual(config["target_modules"] as? [String], ["q_proj", "down_proj"])
        XCTAssertEqual(config["bias"] as? String, "none")
        XCTAssertEqual(config["use_rslora"] as? Bool, true)
        XCTAssertEqual(config["use_dora"] as? Bool, false)
        XCTAssertEqual(config["fan_in_fan_out"] as? Bool, false)
        XCTAssertEqual(config["inference_mode"] as? Bool, true)

        let file = try SafetensorsFile(path: dir + "/adapter_model.safetensors")
        XCTAssertEqual(file.tensorNames.count, 2 * 2 * 2)
        let a = try XCTUnwrap(file.tensorInfo(named: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"))
        let b = try XCTUnwrap(file.tensorInfo(named: "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"))
        XCTAssertEqual(a.shape.dims, [4, 32])  // [r, in]
        XCTAssertEqual(b.shape.dims, [32, 4])  // [out, r]
        // Hugging Face row order: the in-memory q B is written as it is (the loader already un-permuted q/k).
        let qB = try file.tensor(named: "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")
        XCTAssertEqual(qB.scalars, weights.modules["model.layers.0.self_attn.q_proj"]?.b.scalars)
    }

    func testAdaptingSomeLayersWritesLayersToTransform() throws {
        let model = try ModelLoader.load(path: Self.tinyLlamaGGUF).model
        let dir = try ExportFixtures.temporaryDirectory(removedAfter: self)
        try PEFTAdapterWriter.write(try seeded(model, targets: ["v_proj"], layers: [1]), to: dir, layerCount: 2)
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/adapter_config.json"))) as? [String: Any])
        XCTAssertEqual(config["layers_to_transform"] as? [Int], [1])
        XCTAssertEqual(Array(try PEFTAdapterReader.read(directory: dir).modules.keys), ["model.layers.1.self_attn.v_proj"])
    }

    func testPEFTExportThenImportGivesIdenticalLogits() throws {
        for rsLoRA in [false, true] {
            let model = try ModelLoader.load(path: Self.tinyLlamaGGUF).model
            let weights = try seeded(model, rank: 3, alpha: 5, rsLoRA: rsLoRA)
            _ = try LoRAModel(attaching: weights, to: model)
            let expected = try allLogits(model, tokens)
            let dir = try ExportFixtures.temporaryDirectory(removedAfter: self)
            try PEFTAdapterWriter.write(weights, to: dir, layerCount: 2)

            let fresh = try ModelLoader.load(path: Self.tinyLlamaGGUF).model
            let base = try allLogits(fresh, tokens)
            let imported = try PEFTAdapterReader.read(directory: dir)
            XCTAssertEqual(imported.useRSLoRA, rsLoRA)
            XCTAssertEqual(imported.scale, weights.scale)
            _ = try LoRAModel(attaching: imported, to: fresh)
            XCTAssertEqual(try allLogits(fresh, tokens).scalars, expected.scalars, "rsLoRA \(rsLoRA)")
            XCTAssertGreaterThan(maxRelativeDifference(expected, base), 1e-3, "the adapter must change the model")
        }
    }

    func testLoRAModelWeightsAreWhatWasAttached() throws {
        let model = try ModelLoader.load(path: Self.tinyLlamaGGUF).model
        let weights = try seeded(model, targets: ["k_proj", "up_proj"])
        let lora = try LoRAModel(attaching: weights, to: model)
        XCTAssertEqual(lora.spec.targetModules, ["k_proj", "up_proj"])
        XCTAssertNil(lora.spec.layers)
        let back = try lora.weights
        for (name, m) in weights.modules {
            XCTAssertEqual(back.modules[name]?.a.scalars, m.a.scalars)
            XCTAssertEqual(back.modules[name]?.b.scalars, m.b.scalars)
        }
    }

    // MARK: Refusals

    func writePEFT(_ config: [String: Any], tensors: [String: Tensor]) throws -> String {
        let dir = try ExportFixtures.temporaryDirectory(removedAfter: self)
        var full: [String: Any] = ["peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"], "bias": "none"]
        full.merge(config) { $1 }
        try JSONSerialization.data(withJSONObject: full).write(to: URL(fileURLWithPath: dir + "/adapter_config.json"))
        let writer = SafetensorsWriter()
        for (k, v) in tensors.sorted(by: { $0.key < $1.key }) { try writer.addTensor(k, v) }
        try writer.write(to: dir + "/adapter_model.safetensors")
        return dir
    }

    let qA = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    let qB = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"

    func testUnimplementedPEFTFeaturesAreRefusedNamingTheKey() throws {
        let tensors = [qA: Tensor(zeros: [2, 32]), qB: Tensor(zeros: [32, 2])]
        let cases: [([String: Any], String)] = [
            (["use_dora": true], "use_dora"),
            (["rank_pattern": ["q_proj": 4]], "rank_pattern"),
            (["alpha_pattern": ["q_proj": 4]], "alpha_pattern"),
            (["modules_to_save": ["lm_head"]], "modules_to_save"),
            (["bias": "lora_only"], "bias 'lora_only'"),
            (["fan_in_fan_out": true], "fan_in_fan_out"),
            (["peft_type": "IA3"], "peft_type 'IA3'"),
        ]
        for (config, expected) in cases {
            let dir = try writePEFT(config, tensors: tensors)
            XCTAssertThrowsError(try PEFTAdapterReader.read(directory: dir), "\(config)") { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
        // Empty patterns and null modules_to_save are what PEFT writes by default: accepted.
        let defaults = try writePEFT(["rank_pattern": [String: Any](), "alpha_pattern": [String: Any](), "modules_to_save": NSNull(), "use_dora": false], tensors: tensors)
        XCTAssertEqual(try PEFTAdapterReader.read(directory: defaults).modules.count, 1)
        // A DoRA magnitude vector is refused even if the config hides it.
        let magnitude = try writePEFT([:], tensors: tensors.merging(["base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector": Tensor(zeros: [32])]) { $1 })
        XCTAssertThrowsError(try PEFTAdapterReader.read(directory: magnitude)) { XCTAssertTrue("\($0)".contains("lora_magnitude_vector"), "\($0)") }
    }

    func testAnAdapterHoldingNaNIsRefusedBeforeAttachingOrExporting() throws {
        let model = try ModelLoader.load(path: Self.tinyLlamaGGUF).model
        let b = try Tensor(shape: [32, 2], scalars: (0..<64).map { $0 == 9 ? .nan : 0.01 })
        let dir = try writePEFT([:], tensors: [qA: Tensor(zeros: [2, 32]), qB: b])
        XCTAssertThrowsError(try LoRAModel(attaching: try PEFTAdapterReader.read(directory: dir), to: model)) { error in
            guard case let .nonFinite(module, tensor, index, _)? = error as? LoRAError else { return XCTFail("\(error)") }
            XCTAssertEqual([module, tensor], ["model.layers.0.self_attn.q_proj", "lora_B"])
            XCTAssertEqual(index, 9)
        }
        XCTAssertNil(model.blocks[0].attention.q.adapter)
    }

    func testAnAdapterForAnotherModelFailsNamingTheModuleAndBothShapes() throws {
        let model = try ModelLoader.load(path: Self.tinyLlamaGGUF).model
        // Built for a model with hidden size 48: A [2, 48] against q_proj's 32 inputs.
        let wide = try writePEFT([:], tensors: [qA: Tensor(zeros: [2, 48]), qB: Tensor(zeros: [48, 2])])
        XCTAssertThrowsError(try LoRAModel(attaching: try PEFTAdapterReader.read(directory: wide), to: model)) { error in
            XCTAssertEqual(error as? LoRAError, .shapeMismatch(module: "model.layers.0.self_attn.q_proj", tensor: "lora_A", expected: [2, 32], found: [2, 48]))
            XCTAssertEqual("\(error)", "model.layers.0.self_attn.q_proj.lora_A: adapter shape [2, 48] does not fit the model, expected [2, 32]")
        }
        XCTAssertNil(model.blocks[0].attention.q.adapter, "nothing is attached when any module fails")
        // A layer the model does not have.
        let deep = try writePEFT([:], tensors: [qA.replacingOccurrences(of: "layers.0", with: "layers.7"): Tensor(zeros: [2, 32]),
                                                 qB.replacingOccurrences(of: "layers.0", with: "layers.7"): Tensor(zeros: [32, 2])])
        XCTAssertThrowsError(try LoRAModel(attaching: try PEFTAdapterReader.read(directory: deep), to: model)) { error in
            XCTAssertTrue("\(error)".contains("model.layers.7.self_attn.q_proj"), "\(error)")
        }
        // GPT-2 style module names: another architecture.
        let gpt2 = try writePEFT(["target_modules": ["c_attn"]], tensors: ["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight": Tensor(zeros: [2, 32]),
                                                                          "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight": Tensor(zeros: [96, 2])])
        XCTAssertThrowsError(try PEFTAdapterReader.read(directory: gpt2)) { error in
            XCTAssertTrue("\(error)".contains("transformer.h.0.attn.c_attn"), "\(error)")
        }
        // Rank inconsistent with r.
        let rank = try writePEFT(["r": 4], tensors: [qA: Tensor(zeros: [2, 32]), qB: Tensor(zeros: [32, 2])])
        XCTAssertThrowsError(try PEFTAdapterReader.read(directory: rank)) { error in
            XCTAssertEqual(error as? LoRAError, .shapeMismatch(module: "model.layers.0.self_attn.q_proj", tensor: "lora_A", expected: [4, 32], found: [2, 32]))
        }
    }

    // MARK: llama.cpp LoRA GGUF

    func testGGUFLoRAHasLlamaCppOrientationAndGGUFRowOrderAndReadsBack() throws {
        let model = try ModelLoader.load(path: Self.tinyLlamaGGUF).model
        let config = model.config
        for rsLoRA in [false, true] {
            let weights = try seeded(model, rank: 4, alpha: 8, rsLoRA: rsLoRA, targets: ["q_proj", "k_proj", "v_proj"])
            let path = try ExportFixtures.temporaryDirectory(removedAfter: self) + "/lora.gguf"
            try GGUFLoRAWriter.write(weights, for: config, to: path)

            let file = try GGUFFile(path: path)
            XCTAssertEqual(file.metadata["general.type"]?.stringValue, "adapter")
            XCTAssertEqual(file.metadata["adapter.type"]?.stringValue, "lora")
            XCTAssertEqual(file.metadata["general.architecture"]?.stringValue, "llama")
            // llama.cpp scales by alpha / r: rsLoRA's alpha / sqrt(r) needs alpha * sqrt(r).
            XCTAssertEqual(file.metadata["adapter.lora.alpha"]?.doubleValue ?? 0, rsLoRA ? 16 : 8, accuracy: 1e-6)
            let a = try XCTUnwrap(file.tensorInfo(named: "blk.1.attn_k.weight.lora_a"))
            let b = try XCTUnwrap(file.tensorInfo(named: "blk.1.attn_k.weight.lora_b"))
            XCTAssertEqual(a.dimensions, [32, 4])   // ne = [n_in, r]
            XCTAssertEqual(b.dimensions, [4, 16])   // ne = [r, n_out]
            // GGUF row 2i + s of each head holds Hugging Face row s * headDim/2 + i.
            let hfB = try XCTUnwrap(weights.modules["model.layers.1.self_attn.k_proj"]?.b)
            let ggufB = try file.dequantize(b)
            let hd = config.headDim
            for head in 0..<2 { for s in 0..<2 { for i in 0..<(hd / 2) {
                let hfRow = head * hd + s * hd / 2 + i, ggufRow = head * hd + 2 * i + s
                XCTAssertEqual(Array(ggufB.scalars[(ggufRow * 4)..<(ggufRow * 4 + 4)]), Array(hfB.scalars[(hfRow * 4)..<(hfRow * 4 + 4)]))
            } } }
            // v_proj is not permuted.
            XCTAssertEqual(try file.dequantize(named: "blk.0.attn_v.weight.lora_b").scalars, weights.modules["model.layers.0.self_attn.v_proj"]?.b.scalars)

            let back = try GGUFLoRAReader.read(path: path, for: config)
            XCTAssertEqual(back.scale, weights.scale, accuracy: 1e-6)
            XCTAssertEqual(Set(back.modules.keys), Set(weights.modules.keys))
            for (name, m) in weights.modules {
                XCTAssertEqual(back.modules[name]?.a.scalars, m.a.scalars, name)
                XCTAssertEqual(back.modules[name]?.b.scalars, m.b.scalars, name)
            }
        }
    }

    func testGGUFLoRAForQwenKeepsHuggingFaceRowOrderAndRefusesAnotherArchitecture() throws {
        let qwen = try ModelLoader.load(path: Self.tinyQwen2).model
        let weights = try seeded(qwen, targets: ["q_proj"])
        let path = try ExportFixtures.temporaryDirectory(removedAfter: self) + "/qwen-lora.gguf"
        try GGUFLoRAWriter.write(weights, for: qwen.config, to: path)
        XCTAssertEqual(try GGUFFile(path: path).dequantize(named: "blk.0.attn_q.weight.lora_b").scalars,
                       weights.modules["model.layers.0.self_attn.q_proj"]?.b.scalars)
        let llama = try ModelLoader.load(path: Self.tinyLlamaGGUF).model
        XCTAssertThrowsError(try GGUFLoRAReader.read(path: path, for: llama.config)) { error in
            XCTAssertTrue("\(error)".contains("'qwen2'") && "\(error)".contains("'llama'"), "\(error)")
        }
    }

    // MARK: Merged models

    func testMergedHuggingFaceDirectoryAndGGUFEqualBasePlusAdapter() throws {
        for basePath in [Self.tinyLlamaGGUF, Self.tinyQwen2] {
            let loaded = try ModelLoader.load(path: basePath)
            _ = try LoRAModel(attaching: try seeded(loaded.model, rank: 4, alpha: 8, rsLoRA: true), to: loaded.model)
            let expected = try allLogits(loaded.model, tokens)
            let out = try ExportFixtures.temporaryDirectory(removedAfter: self)

            try MergedModelWriter.writeHuggingFace(loaded, to: out + "/hf")
            let hf = try ModelLoader.load(path: out + "/hf")
            XCTAssertEqual(hf.model.config, loaded.model.config)
            XCTAssertLessThanOrEqual(maxRelativeDifference(try allLogits(hf.model, tokens), expected), 1e-4, basePath)
            let safetensors = try SafetensorsFile(path: out + "/hf/model.safetensors")
            XCTAssertEqual(safetensors.tensorInfo(named: "lm_head.weight") == nil, loaded.model.config.tiedEmbeddings)

            guard loaded.source == .gguf else {
                XCTAssertThrowsError(try MergedModelWriter.writeGGUF(loaded, to: out + "/m.gguf")) { XCTAssertTrue("\($0)".contains("GGUF base"), "\($0)") }
                continue
            }
            try MergedModelWriter.writeGGUF(loaded, to: out + "/m32.gguf", type: .f32)
            let g32 = try ModelLoader.load(path: out + "/m32.gguf")
            XCTAssertEqual(g32.gguf?.metadata["general.file_type"]?.intValue, 0)
            XCTAssertEqual(g32.gguf?.tensorInfo(named: "blk.0.attn_q.weight")?.type, .f32)
            XCTAssertLessThanOrEqual(maxRelativeDifference(try allLogits(g32.model, tokens), expected), 1e-4)

            try MergedModelWriter.writeGGUF(loaded, to: out + "/m16.gguf", type: .f16)
            let g16 = try ModelLoader.load(path: out + "/m16.gguf")
            XCTAssertEqual(g16.gguf?.metadata["general.file_type"]?.intValue, 1)
            XCTAssertEqual(g16.gguf?.tensorInfo(named: "blk.0.attn_q.weight")?.type, .f16)
            XCTAssertEqual(g16.gguf?.tensorInfo(named: "blk.0.attn_norm.weight")?.type, .f32)
            XCTAssertLessThanOrEqual(maxRelativeDifference(try allLogits(g16.model, tokens), expected), 2e-2)
        }
    }
}
