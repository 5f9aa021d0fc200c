import Foundation
import LoRA
import Models
import Tensors
import Tokenizers
import XCTest

/// Exported adapters on the real base model against Python peft (fixture made by
/// scripts/reference/make_peft_fixtures.py; skipped when the base model is absent).
final class PEFTReferenceTests: XCTestCase {
    struct Fixture: Decodable {
        struct Prompt: Decodable { let name: String; let input_ids: [Int32] }
        struct Result: Decodable { let top_ids: [[Int]]; let top_logits: [[Float]] }
        struct Case: Decodable {
            let name: String
            let seed: UInt64
            let rank: Int
            let alpha: Float
            let rslora: Bool
            let targets: [String]?
            let layers: [Int]?
            let safetensors_fnv1a64: String
            let max_abs_change_vs_base: Float
            let results: [Result]
        }
        let magnitude: Double
        let prompts: [Prompt]
        let cases: [Case]
    }

    static var cachedBase: LoadedModel?

    func fixture() throws -> Fixture {
        let data = try Data(contentsOf: URL(fileURLWithPath: ExportFixtures.path("Tests/LoRATests/Fixtures/peft_reference.json")))
        return try JSONDecoder().decode(Fixture.self, from: data)
    }

    /// The base model with every adapter removed (tests attach their own).
    func base() throws -> LoadedModel {
        let path = try ExportFixtures.smolLM2()
        let loaded = try Self.cachedBase ?? ModelLoader.load(path: path)
        Self.cachedBase = loaded
        for linear in loaded.model.linears { linear.adapter = nil }
        return loaded
    }

    func weights(for c: Fixture.Case, _ model: TransformerModel, magnitude: Double) throws -> LoRAWeights {
        let spec = try LoRASpec(rank: c.rank, alpha: c.alpha, useRSLoRA: c.rslora,
                                targetModules: c.targets ?? LoRASpec.allTargetModules, layers: c.layers)
        return try LoRAWeights.seededRandom(for: model, spec: spec, seed: c.seed, magnitude: magnitude)
    }

    /// Largest |ours - peft| over the fixture's top-5 ids at every position of every prompt.
    func worstDifference(_ model: TransformerModel, _ fixture: Fixture, _ c: Fixture.Case) throws -> Float {
        var worst: Float = 0
        for (prompt, expected) in zip(fixture.prompts, c.results) {
            let logits = try allLogits(model, prompt.input_ids)
            let vocab = model.config.vocabSize
            for (p, (ids, values)) in zip(expected.top_ids, expected.top_logits).enumerated() {
                for (id, value) in zip(ids, values) { worst = max(worst, abs(logits[flat: p * vocab + id] - value)) }
            }
        }
        return worst
    }

    func testSeededAdaptersRegenerateTheExactExportedFiles() throws {
        let fixture = try fixture()
        let loaded = try base()
        for c in fixture.cases {
            let dir = try ExportFixtures.temporaryDirectory(removedAfter: self)
            try PEFTAdapterWriter.write(try weights(for: c, loaded.model, magnitude: fixture.magnitude), to: dir,
                                        baseModel: "HuggingFaceTB/SmolLM2-135M-Instruct", layerCount: loaded.model.blocks.count)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/adapter_model.safetensors"))
            XCTAssertEqual(fnv1a64(bytes), c.safetensors_fnv1a64, "\(c.name): the Swift generator no longer makes the adapter the fixture was made from")
        }
    }

    func testLogitsWithExportedAdaptersMatchPEFT() throws {
        let fixture = try fixture()
        XCTAssertEqual(fixture.cases.map(\.rank).sorted(), [8, 8, 16, 16])
        XCTAssertEqual(Set(fixture.cases.map(\.rslora)), [false, true])
        for c in fixture.cases {
            let loaded = try base()
            let exported = try weights(for: c, loaded.model, magnitude: fixture.magnitude)
            // Through the files, as a user would: export, import, attach.
            let dir = try ExportFixtures.temporaryDirectory(removedAfter: self)
            try PEFTAdapterWriter.write(exported, to: dir, layerCount: loaded.model.blocks.count)
            _ = try LoRAModel(attaching: try PEFTAdapterReader.read(directory: dir), to: loaded.model)
            let worst = try worstDifference(loaded.model, fixture, c)
            print("PEFT reference \(c.name): max abs logit difference vs peft \(worst) (adapter moves logits by up to \(c.max_abs_change_vs_base))")
            XCTAssertLessThanOrEqual(worst, 2e-3, c.name)
            XCTAssertGreaterThan(c.max_abs_change_vs_base, 1, "\(c.name): the reference adapter should matter")
        }
    }

    /// Control: the same adapter with q_proj B rows in GGUF (interleaved) order is measurably
    /// wrong for the Hugging Face model, so the match above really checks the row convention.
    func testQRowsInGGUFOrderWouldNotMatchPEFT() throws {
        let fixture = try fixture()
        let c = try XCTUnwrap(fixture.cases.first { $0.targets == ["q_proj", "v_proj"] })
        let loaded = try base()
        var weights = try weights(for: c, loaded.model, magnitude: fixture.magnitude)
        for (name, m) in weights.modules where name.hasSuffix("q_proj") {
            weights.modules[name]?.b = try LlamaRowPermutation.hfToGGUF(m.b, headDim: loaded.model.config.headDim)
        }
        _ = try LoRAModel(attaching: weights, to: loaded.model)
        XCTAssertGreaterThan(try worstDifference(loaded.model, fixture, c), 1e-2)
    }

    func testMergedModelsOfTheRealBaseMatchBasePlusAdapterAndPEFT() throws {
        let fixture = try fixture()
        let c = try XCTUnwrap(fixture.cases.first)
        let loaded = try base()
        _ = try LoRAModel(attaching: try weights(for: c, loaded.model, magnitude: fixture.magnitude), to: loaded.model)
        let prompt = fixture.prompts[0].input_ids
        let expected = try allLogits(loaded.model, prompt)
        let out = try ExportFixtures.temporaryDirectory(removedAfter: self)
        defer { try? FileManager.default.removeItem(atPath: out) }

        try MergedModelWriter.writeHuggingFace(loaded, to: out + "/hf")
        let hf = try ModelLoader.load(path: out + "/hf")
        let hfDifference = maxRelativeDifference(try allLogits(hf.model, prompt), expected)
        XCTAssertLessThanOrEqual(hfDifference, 1e-4)
        // The tokenizer written from GGUF metadata encodes as the GGUF tokenizer does.
        let gguf = try XCTUnwrap(loaded.tokenizer), written = try XCTUnwrap(hf.tokenizer)
        for text in ["The capital of France is", "In 1969, 3 astronauts flew 384400 km.", "<|im_start|>user\nHi  there\n\n café<|im_end|>\n"] {
            XCTAssertEqual(written.encode(text), gguf.encode(text), text)
        }
        XCTAssertEqual(written.eosID, gguf.eosID)
        XCTAssertEqual(hf.chatTemplate, loaded.chatTemplate)

        try MergedModelWriter.writeGGUF(loaded, to: out + "/merged.gguf", type: .f32)
        let merged = try ModelLoader.load(path: out + "/merged.gguf")
        let ggufDifference = maxRelativeDifference(try allLogits(merged.model, prompt), expected)
        XCTAssertLessThanOrEqual(ggufDifference, 1e-4)
        XCTAssertEqual(merged.tokenizer?.tokens, gguf.tokens)
        print("merged (real base): relative logit difference vs base+adapter: HF \(hfDifference), GGUF F32 \(ggufDifference)")
    }
}
