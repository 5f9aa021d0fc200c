import Foundation
import XCTest

/// `thoughtcrime export` and `--adapter` on the real base model, as a user runs them.
final class ExportCommandTests: XCTestCase {
    var dir = ""
    let text = "The capital of France is Paris, and 12345 people live there."

    override func setUpWithError() throws {
        try CLI.requireBaseModel()
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tc-cli-export-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if !dir.isEmpty { try? FileManager.default.removeItem(atPath: dir) }
    }

    func logprobs(_ arguments: [String]) throws -> [Double] {
        let r = try CLI.run(["score", "--json"] + arguments + [text])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return (object?["tokens"] as? [[String: Any]] ?? []).compactMap { $0["logprob"] as? Double }
    }

    func assertClose(_ a: [Double], _ b: [Double], tolerance: Double, _ message: String) {
        XCTAssertEqual(a.count, b.count, message)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(worst, tolerance, message)
    }

    func testOneAdapterGivesTheSameScoresThroughEveryExportFormat() throws {
        let peft = "\(dir)/peft"
        let r = try CLI.run(["export", "--random-adapter", "9", "--rank", "4", "--alpha", "8", "--rslora", "--layers", "0,1,2",
                             "--format", "peft", "--out", peft])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("21 adapted modules, rank 4"), r.stdout)
        for (format, out) in [("gguf-lora", "\(dir)/lora.gguf"), ("merged-hf", "\(dir)/merged-hf"), ("merged-gguf", "\(dir)/merged.gguf")] {
            let e = try CLI.run(["export", peft, "--format", format, "--out", out])
            XCTAssertEqual(e.status, 0, "\(format): \(e.stderr)")
        }
        let withPEFT = try logprobs(["--adapter", peft])
        XCTAssertGreaterThan(zip(withPEFT, try logprobs([])).map { abs($0 - $1) }.max() ?? 0, 1e-2, "the adapter changes the scores")
        assertClose(try logprobs(["--adapter", "\(dir)/lora.gguf"]), withPEFT, tolerance: 1e-4, "llama.cpp LoRA read back")
        assertClose(try logprobs(["--model", "\(dir)/merged-hf"]), withPEFT, tolerance: 1e-3, "merged Hugging Face directory")
        assertClose(try logprobs(["--model", "\(dir)/merged.gguf"]), withPEFT, tolerance: 1e-3, "merged GGUF")

        // An earlier export is not overwritten by accident.
        let again = try CLI.run(["export", peft, "--format", "peft", "--out", peft])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("already exists; pass --force"), again.stderr)
    }

    /// Issue 29, item 15: merged GGUFs in llama.cpp's Q8_0 and Q4_0, a quarter and about a
    /// seventh of the F32 size, scoring close to the unquantised merge.
    func testAMergedGGUFCanBeQuantisedToQ8_0AndQ4_0() throws {
        let peft = "\(dir)/peft"
        XCTAssertEqual(try CLI.run(["export", "--random-adapter", "9", "--rank", "4", "--layers", "0,1", "--format", "peft", "--out", peft]).status, 0)
        var sizes: [String: Int] = [:]
        for (name, extra) in [("f32", [String]()), ("q8_0", ["--quant", "q8_0"]), ("q4_0", ["--quant", "q4_0"])] {
            let out = "\(dir)/merged-\(name).gguf"
            let e = try CLI.run(["export", peft, "--format", "merged-gguf", "--out", out] + extra)
            XCTAssertEqual(e.status, 0, "\(name): \(e.stderr)")
            sizes[name] = (try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
        }
        let f32 = Double(sizes["f32"] ?? 0)
        XCTAssertLessThan(Double(sizes["q8_0"] ?? 0), 0.3 * f32, "\(sizes)")
        XCTAssertLessThan(Double(sizes["q4_0"] ?? 0), 0.17 * f32, "\(sizes)")
        let reference = try logprobs(["--model", "\(dir)/merged-f32.gguf"])
        let q8 = try logprobs(["--model", "\(dir)/merged-q8_0.gguf"])
        let q4 = try logprobs(["--model", "\(dir)/merged-q4_0.gguf"])
        func meanGap(_ a: [Double]) -> Double { zip(a, reference).map { abs($0 - $1) }.reduce(0, +) / Double(max(reference.count, 1)) }
        XCTAssertEqual(q8.count, reference.count)
        XCTAssertLessThan(meanGap(q8), 0.1, "Q8_0 stays close to F32")
        XCTAssertLessThan(meanGap(q4), 1.0, "Q4_0 loses more but still scores the same text")
        let wrong = try CLI.run(["export", peft, "--format", "peft", "--out", "\(dir)/x", "--quant", "q8_0"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.stderr.contains("--quant applies to --format merged-gguf only"), wrong.stderr)
    }

    func testAnUnimplementedPEFTFeatureIsRefusedNotIgnored() throws {
        let peft = "\(dir)/peft"
        XCTAssertEqual(try CLI.run(["export", "--random-adapter", "1", "--rank", "2", "--targets", "q_proj", "--layers", "0", "--format", "peft", "--out", peft]).status, 0)
        let configPath = "\(peft)/adapter_config.json"
        var config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: Any])
        config["use_dora"] = true
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        let r = try CLI.run(["generate", "--adapter", peft, "Hi", "--max-tokens", "2"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("use_dora: DoRA adapters are not implemented"), r.stderr)
    }

    func testARunDirectoryExportsItsLatestCheckpoint() throws {
        let rows = (0..<4).map { #"{"messages": [{"role": "user", "content": "Say \#($0)"}, {"role": "assistant", "content": "\#($0) it is"}]}"# }
        try (rows.joined(separator: "\n") + "\n").write(toFile: "\(dir)/train.jsonl", atomically: true, encoding: .utf8)
        let config = """
        run: {name: tiny, output_dir: \(dir)/runs, seed: 1}
        model: {path: checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf, weights: float32}
        lora: {rank: 2, alpha: 4, target_modules: [q_proj, v_proj], layers: [0]}
        data: {train: \(dir)/train.jsonl, validation_split: 0, max_seq_len: 64}
        training: {max_steps: 2, batch_size: 2, learning_rate: 1.0e-2}
        logging: {progress: plain}
        """
        try config.write(toFile: "\(dir)/run.yaml", atomically: true, encoding: .utf8)
        let train = try CLI.run(["finetune", "--config", "\(dir)/run.yaml"])
        XCTAssertEqual(train.status, 0, train.stderr)
        let e = try CLI.run(["export", "\(dir)/runs/tiny", "--format", "peft", "--out", "\(dir)/peft"])
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertTrue(e.stdout.contains("2 adapted modules, rank 2"), e.stdout)
        let config2 = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/peft/adapter_config.json"))) as? [String: Any])
        XCTAssertEqual(config2["layers_to_transform"] as? [Int], [0])
        XCTAssertEqual(config2["target_modules"] as? [String], ["q_proj", "v_proj"])
        assertClose(try logprobs(["--adapter", "\(dir)/runs/tiny"]), try logprobs(["--adapter", "\(dir)/peft"]), tolerance: 0, "checkpoint and its PEFT export")
    }
}
