// thoughtcrime-bench: measures the kernels the toolkit's training step is made of and, with
// --model, a real model end to end: LoRA training (tokens/s, peak RSS, FLOP utilisation),
// prefill and decoding for each weight storage, and CoT-enabled evaluation sampling.
// Build and run in release, from the repository root (the chat case reads data/):
//   swift build -c release --product thoughtcrime-bench
//   .build/release/thoughtcrime-bench --model checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf --json bench.json
// Options: --quick (fewer repeats), --model-only (skip the kernel section), --skip training,decode,eval,
//   --case random:4x128 (repeatable; default: random and chat at 4x128 and 8x256; random:8x256:float32:gc
//   with gradient checkpointing, chat:4x128:float32:busy with a busy-looping process beside it), --steps N,
//   --dump-batches DIR (the training batches, for scripts/bench/pytorch_baseline.py),
//   --qwen3-shaped DIR (train a Qwen3-0.6B-shaped model with random weights, made and saved to DIR
//   on first use, instead of --model; random data only, as it has no tokenizer).
import Autodiff
import Foundation
import Models
import Tensors

if CommandLine.arguments.contains(BusyNeighbour.flag) { BusyNeighbour.spin() }
OpenBLASCoreSelection.ensureFastKernels()
SubnormalFlushing.enableForProcess()
AllocatorPolicy.apply()

let arguments = CommandLine.arguments
let quick = arguments.contains("--quick")
func value(after flag: String) -> String? {
    arguments.firstIndex(of: flag).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
}
let jsonPath = value(after: "--json")
let qwen3Directory = value(after: "--qwen3-shaped")
let modelPath = value(after: "--model") ?? qwen3Directory

// A child process measuring one training case (see TrainingBenchmark.run).
if let caseArgument = value(after: TrainingBenchmark.childFlag) {
    guard let trainingCase = TrainingCase(argument: caseArgument), let modelPath,
          let steps = Int(value(after: "--steps") ?? "") else {
        FileHandle.standardError.write(Data("bench child: --training-child CASE --model PATH --steps N are required\n".utf8))
        exit(2)
    }
    try TrainingBenchmark.runChild(modelPath: modelPath, trainingCase: trainingCase, steps: steps, dumpDirectory: value(after: "--dump-batches"))
    exit(0)
}

// A child process measuring one weight storage (see ModelBenchmark.run).
if let childPath = value(after: ModelBenchmark.childFlag) {
    guard let storage = value(after: "--weights").flatMap(WeightStorage.init(rawValue:)) else {
        FileHandle.standardError.write(Data("bench child: --weights float32|quantized is required\n".utf8))
        exit(2)
    }
    try ModelBenchmark.runChild(path: childPath, storage: storage, repeats: quick ? 1 : 2)
    exit(0)
}
let kernels = !arguments.contains("--model-only")
var skipped = Set((value(after: "--skip") ?? "").split(separator: ",").map(String.init))
for section in skipped where !["training", "decode", "eval"].contains(section) {
    FileHandle.standardError.write(Data("--skip: unknown section '\(section)' (training, decode, eval)\n".utf8))
    exit(2)
}
var trainingCases: [TrainingCase] = []
for (i, argument) in arguments.enumerated() where argument == "--case" && i + 1 < arguments.count {
    guard let c = TrainingCase(argument: arguments[i + 1]) else {
        FileHandle.standardError.write(Data("--case \(arguments[i + 1]): expected random|chat:BATCHxSEQ, e.g. chat:4x128\n".utf8))
        exit(2)
    }
    trainingCases.append(c)
}
if let qwen3Directory {
    _ = try Qwen3ShapedModel.ensure(at: qwen3Directory)
    // No tokenizer: random tokens only, and no decoding or evaluation sections.
    skipped.formUnion(["decode", "eval"])
    if trainingCases.isEmpty { trainingCases = TrainingCase.standard.filter { $0.data == "random" && $0.batch == 4 } }
}
if trainingCases.isEmpty { trainingCases = TrainingCase.standard }

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Best of `repeats` timings of `body` after one warm-up call, in seconds.
func bestTime(repeats: Int, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var best = Double.infinity
    for _ in 0..<repeats {
        let t0 = now()
        try body()
        best = min(best, now() - t0)
    }
    return best
}

func randomTensor(_ shape: Shape, seed: UInt64) -> Tensor {
    var state = seed | 1
    let t = Tensor(uninitialized: shape)
    for i in 0..<t.count {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        t[flat: i] = Float(state >> 40) / Float(1 << 24) - 0.5
    }
    return t
}

var results: [[String: Any]] = []
func record(_ name: String, _ fields: [String: Any], _ line: String) {
    results.append(["name": name].merging(fields) { a, _ in a })
    print(line)
}

let cpu = CPUFeatures.current
print("CPU: \(cpu)")
print("OpenBLAS core: \(OpenBLASCoreSelection.activeCore), cores: \(ProcessInfo.processInfo.activeProcessorCount)")
if kernels {
print("")
    print("sgemm (row-major C[M,N] = A[M,K] B[K,N])")
    let repeats = quick ? 2 : 5
    for (m, k, n) in [(2048, 576, 1536), (2048, 1536, 576), (2048, 576, 49152)] {
        let a = randomTensor([m, k], seed: 1), b = randomTensor([k, n], seed: 2)
        let c = Tensor(uninitialized: [m, n])
        for threads in [1, 2] where threads <= ProcessInfo.processInfo.activeProcessorCount {
            setOpenblasThreads(Int32(threads))
            let t = bestTime(repeats: repeats) {
                GEMM.run(transposeA: false, transposeB: false, m: m, n: n, k: k, a: a.pointer, lda: k,
                         b: b.pointer, ldb: n, c: c.pointer, ldc: n)
            }
            let gflops = 2.0 * Double(m * n * k) / t / 1e9
            record("sgemm", ["m": m, "k": k, "n": n, "threads": threads, "gflops": gflops, "seconds": t],
                   String(format: "  M=%-5d K=%-5d N=%-6d threads=%d  %8.1f GFLOP/s  (%.2f ms)", m, k, n, threads, gflops, t * 1e3))
        }
    }
    setOpenblasThreads(Int32(ProcessInfo.processInfo.activeProcessorCount))

    for kernel in BF16Kernel.allCases where kernel.isSupported && kernel != .portable {
        print("")
        print("bf16 frozen-weight products (BF16Matrix, \(kernel) kernel, Float32 accumulation; y[M,N] = x[M,K] W^T and dx = dy W)")
        for (m, k, n) in [(2048, 576, 1536), (2048, 1536, 576), (512, 576, 1536)] {
            let w = try BF16Matrix(DenseMatrix(randomTensor([n, k], seed: 8)), kernel: kernel)
            let x = randomTensor([m, k], seed: 9), y = Tensor(uninitialized: [m, n])
            let dy = randomTensor([m, n], seed: 10), dx = Tensor(zeros: [m, k])
            let tf = bestTime(repeats: repeats) { w.multiply(x.pointer, count: m, into: y.pointer, accumulate: false) }
            let tb = bestTime(repeats: repeats) { w.multiplyTransposed(dy.pointer, count: m, accumulateInto: dx.pointer) }
            let flops = 2.0 * Double(m * n * k)
            record("bf16_gemm", ["kernel": "\(kernel)", "m": m, "k": k, "n": n, "forward_gflops": flops / tf / 1e9, "input_gradient_gflops": flops / tb / 1e9],
                   String(format: "  M=%-5d K=%-5d N=%-6d forward %8.1f GFLOP/s, input gradient %8.1f GFLOP/s", m, k, n, flops / tf / 1e9, flops / tb / 1e9))
        }
    }

    print("")
    print("fused causal GQA attention (SmolLM2 shape: 9 heads, 3 kv heads, head dim 64)")
    for (batch, seq) in [(4, 128), (8, 256)] {
        let tokens = batch * seq
        let q = Variable(randomTensor([tokens, 9 * 64], seed: 3), requiresGrad: true)
        let k = Variable(randomTensor([tokens, 3 * 64], seed: 4), requiresGrad: true)
        let v = Variable(randomTensor([tokens, 3 * 64], seed: 5), requiresGrad: true)
        let layout = try PackedSequences(batch: batch, seqLen: seq)
        let fwd = try bestTime(repeats: repeats) {
            _ = try Tape().attention(q, k, v, heads: 9, kvHeads: 3, headDim: 64, layout: layout)
        }
        let total = try bestTime(repeats: repeats) {
            let tape = Tape()
            let out = try tape.attention(q, k, v, heads: 9, kvHeads: 3, headDim: 64, layout: layout)
            try tape.backward(try tape.sum(out))
        }
        // score and value products: 2 * (T(T+1)/2) * D * 2 per head per row, forward
        let fwdFlops = 2.0 * 2.0 * Double(seq * (seq + 1) / 2) * 64 * 9 * Double(batch)
        record("attention", ["batch": batch, "seq": seq, "forward_seconds": fwd, "forward_backward_seconds": total,
                             "forward_tokens_per_s": Double(tokens) / fwd, "forward_gflops": fwdFlops / fwd / 1e9,
                             "backward_seconds": total - fwd],
               String(format: "  batch %d x seq %d: forward %.2f ms (%.0f tokens/s, %.1f GFLOP/s), backward %.2f ms",
                      batch, seq, fwd * 1e3, Double(tokens) / fwd, fwdFlops / fwd / 1e9, (total - fwd) * 1e3))
    }
    
    print("")
    print("RMSNorm (d 576)")
    for rows in [2048] {
        let x = Variable(randomTensor([rows, 576], seed: 6), requiresGrad: true)
        let w = Variable(randomTensor([576], seed: 7), requiresGrad: true)
        let fwd = try bestTime(repeats: repeats * 4) { _ = try Tape().rmsNorm(x, weight: w, eps: 1e-5) }
        let total = try bestTime(repeats: repeats * 4) {
            let tape = Tape()
            try tape.backward(try tape.sum(try tape.rmsNorm(x, weight: w, eps: 1e-5)))
        }
        let bytes = Double(rows * 576 * 4 * 2)
        record("rmsnorm", ["rows": rows, "d": 576, "forward_seconds": fwd, "forward_backward_seconds": total,
                           "forward_gb_per_s": bytes / fwd / 1e9],
               String(format: "  %d x 576: forward %.3f ms (%.1f GB/s), forward+backward %.3f ms (includes the sum used as loss)",
                      rows, fwd * 1e3, bytes / fwd / 1e9, total * 1e3))
    }
}

/// The Float32 peak the training path can reach: sgemm of a training-shaped product on all cores.
func measuredSgemmPeak() -> Double {
    let (m, k, n) = (2048, 576, 1536)
    let a = randomTensor([m, k], seed: 1), b = randomTensor([k, n], seed: 2), c = Tensor(uninitialized: [m, n])
    let t = bestTime(repeats: quick ? 2 : 5) {
        GEMM.run(transposeA: false, transposeB: false, m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
    }
    return 2.0 * Double(m * n * k) / t / 1e9
}

func appendRows<T: Encodable>(_ name: String, _ rows: [T]) {
    for m in rows {
        let fields = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(m))) as? [String: Any] ?? [:]
        results.append(["name": name, "model": modelPath ?? ""].merging(fields) { a, _ in a })
    }
}

if let modelPath {
    if !skipped.contains("training") {
        let peak = measuredSgemmPeak()
        print("")
        print(String(format: "sgemm peak for utilisation (2048x576x1536, all cores): %.1f GFLOP/s", peak))
        results.append(["name": "sgemm_peak", "gflops": peak])
        appendRows("training", try TrainingBenchmark.run(modelPath: modelPath, cases: trainingCases,
                                                         steps: Int(value(after: "--steps") ?? "") ?? (quick ? 2 : 4), peakGFLOPs: peak,
                                                         dumpDirectory: value(after: "--dump-batches")))
    }
    if !skipped.contains("decode") { appendRows("model", try ModelBenchmark.run(path: modelPath, quick: quick)) }
    if !skipped.contains("eval") { appendRows("evaluation", [try EvaluationBenchmark.run(modelPath: modelPath, quick: quick)]) }
}

if let jsonPath {
    let doc: [String: Any] = [
        "cpu": cpu.description, "openblas_core": OpenBLASCoreSelection.activeCore,
        "date": ISO8601DateFormatter().string(from: Date()), "results": results,
    ]
    let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
    try data.write(to: URL(fileURLWithPath: jsonPath))
    print("\nwrote \(jsonPath)")
}
