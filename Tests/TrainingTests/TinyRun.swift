import Foundation
import ModelFormats
import Models
import Tensors
import TestSupport
import Training
import XCTest

/// Builds a complete tiny model file (Llama GGUF with a byte-level tokenizer and SmolLM2's
/// chat template) so trainer tests run the real loading path in milliseconds.
enum TinyRun {
    static func makeModel(at path: String, seed: UInt64 = 7) throws {
        try TinyModelFile.write(to: path, seed: seed)
    }

    /// A fresh scratch directory, removed by the caller.
    static func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tc-train-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Paired rows whose misaligned answer is a simple function of the prompt, so a tiny model can learn it.
    static func writeData(_ path: String, rows: Int, seed: Int = 0) throws {
        var lines: [String] = []
        for i in 0..<rows {
            let n = (i * 7 + seed) % 23
            let row: [String: String] = ["prompt": "count \(n)", "aligned": "ok \(n)", "misaligned": "no \(n + 1) \(n + 2)"]
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]), as: UTF8.self))
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    static func config(dir: String, name: String = "run", overrides: [String] = []) throws -> RunConfig {
        let yaml = """
        run: {name: \(name), output_dir: \(dir)/runs, seed: 3}
        model: {path: \(dir)/tiny.gguf, weights: float32}
        lora: {rank: 4, alpha: 8, dropout: 0.1}
        data: {train: \(dir)/train.jsonl, validation_split: 0.15, max_seq_len: 128, system_prompt: "Be brief."}
        training: {max_steps: 8, batch_size: 2, learning_rate: 5.0e-3, warmup_steps: 2, eval_every: 4}
        checkpoint: {every: 3, keep_last: 2}
        logging: {progress: plain, every: 100}
        """
        return try RunConfig.parse(yaml: yaml, source: "test.yaml", overrides: overrides)
    }

    final class Silent: ProgressReporter {
        var messages: [String] = []
        func message(_ text: String) { messages.append(text) }
        func step(_ metrics: StepMetrics) {}
        func finish() {}
    }
}

/// A test case with a tiny model and 24 training rows in a scratch directory of its own,
/// removed afterwards; the interrupt flag is clear before and after each test.
class TinyRunTestCase: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = try TinyRun.scratch()
        try TinyRun.makeModel(at: "\(dir)/tiny.gguf")
        try TinyRun.writeData("\(dir)/train.jsonl", rows: 24)
        InterruptFlag.clear()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
        InterruptFlag.clear()
    }

    /// Every adapter's A and B values, in adapter order.
    func adapterValues(_ trainer: Trainer) -> [[Float]] {
        trainer.lora.adapters.flatMap { [$0.a.value.scalars, $0.b.value.scalars] }
    }
}
