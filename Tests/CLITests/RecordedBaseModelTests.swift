import Foundation
import XCTest

/// `generate`, `score` and `serve` with `--adapter` and no `--model` run on the base model
/// recorded with the adapter (as `export` does), wherever they are started from.
final class RecordedBaseModelTests: XCTestCase {
    var dir = ""
    var basePath: String { CLI.packageRoot.appendingPathComponent("checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf").path }

    override func setUpWithError() throws {
        try CLI.requireBaseModel()
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tc-cli-base-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if !dir.isEmpty { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// A PEFT adapter whose adapter_config.json records `basePath` (absolute).
    private func adapter() throws -> String {
        let peft = "\(dir)/peft"
        let r = try CLI.run(["export", "--random-adapter", "3", "--rank", "2", "--targets", "q_proj", "--layers", "0",
                             "--model", basePath, "--format", "peft", "--out", peft])
        XCTAssertEqual(r.status, 0, r.stderr)
        return peft
    }

    private func logprobs(_ r: CLI.Result) throws -> [Double] {
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return (object?["tokens"] as? [[String: Any]] ?? []).compactMap { $0["logprob"] as? Double }
    }

    func testScoreWithAnAdapterUsesItsRecordedBaseFromAnyDirectory() throws {
        let peft = try adapter()
        // The default model path is relative: it does not exist in `dir`, the recorded one does.
        let away = try logprobs(try CLI.run(["score", "--json", "--adapter", peft, "Paris is in France."], directory: URL(fileURLWithPath: dir)))
        let explicit = try logprobs(try CLI.run(["score", "--json", "--adapter", peft, "--model", basePath, "Paris is in France."]))
        XCTAssertFalse(away.isEmpty)
        XCTAssertEqual(away, explicit)
    }

    func testGenerateWithAnAdapterUsesItsRecordedBaseFromAnyDirectory() throws {
        let peft = try adapter()
        let r = try CLI.run(["generate", "--adapter", peft, "--max-tokens", "2", "Hi"], directory: URL(fileURLWithPath: dir))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stderr.contains("warning"), r.stderr)
    }

    func testARecordedBaseThatIsMissingHereIsNamedInAWarning() throws {
        let peft = try adapter()
        let configPath = "\(peft)/adapter_config.json"
        var config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: Any])
        config["base_model_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        let r = try CLI.run(["generate", "--adapter", peft, "--max-tokens", "1", "Hi"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("records base model 'HuggingFaceTB/SmolLM2-135M-Instruct', which is not found here; using checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf"), r.stderr)
    }
}
