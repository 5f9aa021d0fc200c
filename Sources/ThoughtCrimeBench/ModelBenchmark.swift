// The end-to-end section of thoughtcrime-bench: a real model, both weight storages, each in its
// own child process so that load time and peak RSS belong to one storage.
import Autodiff
import Foundation
import Models
import Tensors

/// What one child process measures for one weight storage.
struct ModelMeasurement: Codable {
    var storage: String
    var loadSeconds: Double
    var prefill1x128TokensPerSecond: Double
    var prefill4x128TokensPerSecond: Double
    var decodeBatch1TokensPerSecond: Double
    var decodeBatch8TokensPerSecond: Double
    var decodeBatch16TokensPerSecond: Double
    var peakRSSMegabytes: Double
    var weightMegabytes: Double
}

enum ModelBenchmark {
    static let childFlag = "--model-child"
    static let promptLength = 128
    static let newTokens = 64

    /// Deterministic ordinary-text token ids (avoiding the special tokens at the start of
    /// the vocabulary), different for each sequence.
    static func prompt(_ sequence: Int, length: Int, vocab: Int) -> [Int32] {
        (0..<length).map { Int32(1000 + (($0 * 7919 + sequence * 104_729) % max(1, min(vocab, 40_000) - 1000))) }
    }

    static func argmax(_ row: UnsafePointer<Float>, _ count: Int) -> Int32 {
        var best = 0
        for i in 1..<count where row[i] > row[best] { best = i }
        return Int32(best)
    }

    static func peakRSSMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024  // kilobytes on Linux
    }

    /// Greedy decoding of `batch` sequences after a prompt each; returns generated tokens per second.
    static func decode(_ model: TransformerModel, batch: Int, promptLength: Int) throws -> Double {
        let vocab = model.config.vocabSize
        let caches = (0..<batch).map { _ in model.makeCache(capacity: promptLength + newTokens) }
        let prompts = (0..<batch).map { prompt($0, length: promptLength, vocab: vocab) }
        let prefill = try CachedBatch(caches: caches, newTokens: prompts.map(\.count))
        let hidden = try model.hiddenStates(Tape(recording: false), tokens: prompts.flatMap { $0 }, context: .cached(prefill))
        var logits = model.logits(hidden: hidden.value, rows: (0..<batch).map { ($0 + 1) * promptLength - 1 })
        var next = (0..<batch).map { argmax(logits.pointer + $0 * vocab, vocab) }
        let step = try CachedBatch(caches: caches, newTokens: Array(repeating: 1, count: batch))
        let t0 = now()
        for _ in 0..<newTokens {
            let h = try model.hiddenStates(Tape(recording: false), tokens: next, context: .cached(step))
            logits = model.logits(hidden: h.value, rows: Array(0..<batch))
            next = (0..<batch).map { argmax(logits.pointer + $0 * vocab, vocab) }
        }
        return Double(batch * newTokens) / (now() - t0)
    }

    /// Runs in the child process: loads, measures, prints one JSON line.
    static func runChild(path: String, storage: WeightStorage, repeats: Int) throws {
        let t0 = now()
        let model = try ModelLoader.load(path: path, weights: storage).model
        let loadSeconds = now() - t0
        func prefill(batch: Int) throws -> Double {
            let tokens = (0..<batch).flatMap { prompt($0, length: promptLength, vocab: model.config.vocabSize) }
            let layout = try PackedSequences(batch: batch, seqLen: promptLength)
            let seconds = try bestTime(repeats: repeats) {
                let h = try model.hiddenStates(Tape(recording: false), tokens: tokens, context: .packed(layout))
                _ = model.logits(hidden: h.value, rows: (0..<batch).map { ($0 + 1) * promptLength - 1 })
            }
            return Double(batch * promptLength) / seconds
        }
        let prefill1 = try prefill(batch: 1), prefill4 = try prefill(batch: 4)
        // decoding: a short warm-up run, then the best of `repeats`
        _ = try decode(model, batch: 1, promptLength: 16)
        let decode1 = try (0..<repeats).map { _ in try decode(model, batch: 1, promptLength: promptLength) }.max() ?? 0
        let decode8 = try (0..<repeats).map { _ in try decode(model, batch: 8, promptLength: promptLength) }.max() ?? 0
        let decode16 = try (0..<repeats).map { _ in try decode(model, batch: 16, promptLength: promptLength) }.max() ?? 0
        let m = ModelMeasurement(
            storage: storage.rawValue, loadSeconds: loadSeconds, prefill1x128TokensPerSecond: prefill1,
            prefill4x128TokensPerSecond: prefill4, decodeBatch1TokensPerSecond: decode1,
            decodeBatch8TokensPerSecond: decode8, decodeBatch16TokensPerSecond: decode16, peakRSSMegabytes: peakRSSMegabytes(),
            weightMegabytes: Double(model.weightBytes) / 1_048_576)
        let data = try JSONEncoder().encode(m)
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    /// Runs in the parent: one child per storage; prints the table and returns the rows.
    static func run(path: String, quick: Bool) throws -> [ModelMeasurement] {
        print("")
        print("model \(path): prefill 1x\(promptLength) and 4x\(promptLength), greedy decode of \(newTokens) tokens after a \(promptLength)-token prompt (best of \(quick ? 1 : 2))")
        var rows: [ModelMeasurement] = []
        let oneDNNBF16 = (try? OneDNNPrecision.bf16.implementation.get()) != nil
        for storage in WeightStorage.allCases where oneDNNBF16 || (storage != .onednnBF16 && storage != .quantizedWithOneDNNPrefill) {
            let arguments = [childFlag, path, "--weights", storage.rawValue] + (quick ? ["--quick"] : [])
            if let m = try ChildProcess.measure(ModelMeasurement.self, arguments: arguments, label: storage.rawValue) { rows.append(m) }
        }
        print("  storage                load s  prefill 1x128 tok/s  prefill 4x128 tok/s  decode b1 tok/s  decode b8 tok/s  decode b16 tok/s  peak RSS MB  weights MB")
        for m in rows {
            print(String(format: "  %-21@ %7.2f %20.1f %20.1f %16.1f %16.1f %17.1f %12.0f %11.0f", m.storage as NSString, m.loadSeconds,
                         m.prefill1x128TokensPerSecond, m.prefill4x128TokensPerSecond, m.decodeBatch1TokensPerSecond,
                         m.decodeBatch8TokensPerSecond, m.decodeBatch16TokensPerSecond, m.peakRSSMegabytes, m.weightMegabytes))
        }
        return rows
    }
}
