import ArgumentParser
import Foundation
import LoRA
import ModelFormats
import Models
import Training

/// `thoughtcrime export`: an adapter in the formats other tools load.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an adapter as a PEFT directory, a llama.cpp LoRA GGUF, or a merged model (Hugging Face directory or GGUF).",
        discussion: """
            SOURCE is a run directory (its latest checkpoint), a checkpoint .h5, a PEFT directory or a LoRA .gguf.
            Formats: peft (adapter_config.json + adapter_model.safetensors), gguf-lora (llama.cpp --lora),
            merged-hf (config.json, model.safetensors, tokenizer files), merged-gguf (needs a GGUF base).
            The base model defaults to the one recorded with the adapter (checkpoint config, PEFT base_model_name_or_path).
            Formats and the q/k row convention: docs/file-formats.md, "Adapters and exports".
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case peft, ggufLoRA = "gguf-lora", mergedHF = "merged-hf", mergedGGUF = "merged-gguf"
    }

    enum DType: String, ExpressibleByArgument, CaseIterable { case f32, f16 }
    enum Quant: String, ExpressibleByArgument, CaseIterable { case q8_0, q4_0 }

    @Argument(help: "Run directory, checkpoint .h5, PEFT directory or LoRA .gguf.")
    var source: String?

    @Option(help: "Output format: \(Format.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: Format

    @Option(help: "Output directory (peft, merged-hf) or file (gguf-lora, merged-gguf).")
    var out: String

    @Option(help: "Base model (GGUF file or Hugging Face directory); defaults to the adapter's recorded base.")
    var model: String?

    @Option(name: .long, help: "Frozen weight storage while exporting: float32, quantized, bf16, onednn-bf16 or quantized+onednn-bf16 (the merged weights are computed from the dequantised base either way).")
    var weights: WeightStorage = .float32

    @Option(help: "Tensor type of GGUF outputs: f32 or f16 (norms stay f32).")
    var dtype: DType = .f32

    @Option(help: "merged-gguf only: quantise the matrices as llama-quantize does, q8_0 (about 145 MB at SmolLM2-135M) or q4_0 (about 85 MB); norms stay f32.")
    var quant: Quant?

    @Option(name: .customLong("base-name"), help: "base_model_name_or_path written into a PEFT config (default: the base model path).")
    var baseName: String?

    @Flag(help: "Replace an existing output.")
    var force = false

    // Diagnostics: a seeded random adapter instead of SOURCE, for reference fixtures
    // (LoRAWeights.seededRandom documents the formula).
    @Option(name: .customLong("random-adapter"), help: .hidden) var randomSeed: UInt64?
    @Option(help: .hidden) var rank = 8
    @Option(help: .hidden) var alpha: Float = 16
    @Flag(help: .hidden) var rslora = false
    @Option(help: .hidden) var targets = LoRASpec.allTargetModules.joined(separator: ",")
    @Option(help: .hidden) var layers: String?
    @Option(help: .hidden) var magnitude = 0.3

    func validate() throws {
        if (source == nil) == (randomSeed == nil) { throw ValidationError("give an adapter SOURCE to export") }
        if quant != nil, format != .mergedGGUF { throw ValidationError("--quant applies to --format merged-gguf only") }
        if quant != nil, dtype != .f32 { throw ValidationError("give --quant or --dtype f16, not both") }
    }

    func run() throws {
        try checkOutput()
        let basePath = try resolveBaseModel(explicit: model, adapter: source)
        let loaded = try loadBase(path: basePath, weights: weights)
        let weights: LoRAWeights
        if let source {
            let adapter = try AdapterSource.load(path: source, modelConfig: loaded.model.config)
            for warning in adapter.warnings { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
            weights = adapter.weights
        } else {
            let spec = try LoRASpec(rank: rank, alpha: alpha, useRSLoRA: rslora, targetModules: split(targets),
                                    layers: try layers.map { try split($0).map { guard let l = Int($0) else { throw ValidationError("--layers: '\($0)' is not a layer index") }; return l } })
            weights = try LoRAWeights.seededRandom(for: loaded.model, spec: spec, seed: randomSeed ?? 0, magnitude: magnitude)
        }
        // Attaching checks every module and shape against the base before anything is written.
        _ = try LoRAModel(attaching: weights, to: loaded.model)
        let type: GGMLType = dtype == .f16 ? .f16 : .f32
        switch format {
        case .peft:
            try PEFTAdapterWriter.write(weights, to: out, baseModel: baseName ?? basePath, layerCount: loaded.model.blocks.count)
        case .ggufLoRA:
            try GGUFLoRAWriter.write(weights, for: loaded.model.config, to: out, type: type)
        case .mergedHF:
            try MergedModelWriter.writeHuggingFace(loaded, to: out)
        case .mergedGGUF:
            try MergedModelWriter.writeGGUF(loaded, to: out, type: quant.map { $0 == .q8_0 ? GGMLType.q8_0 : .q4_0 } ?? type)
        }
        let scale = weights.useRSLoRA ? "alpha/sqrt(r)" : "alpha/r"
        print("wrote \(format.rawValue) to \(out): \(weights.modules.count) adapted modules, rank \(weights.rank), alpha \(weights.alpha) (\(scale) = \(weights.scale)), base \(basePath)")
    }

    private func split(_ list: String) -> [String] {
        list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Refuses to overwrite an earlier export unless --force.
    private func checkOutput() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory), !force else { return }
        if isDirectory.boolValue {
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
            guard !contents.isEmpty else { return }
            guard format == .peft || format == .mergedHF else {
                throw OutputExists(path: out, detail: "it is a directory; \(format.rawValue) writes a file")
            }
        }
        throw OutputExists(path: out)
    }
}

/// An output that is already there: an error of the run, not of the command line, so it is
/// reported without the usage text.
struct OutputExists: Error, CustomStringConvertible {
    var path: String
    var detail: String? = nil
    var description: String { "\(path) already exists\(detail.map { " and \($0)" } ?? ""); pass --force to replace it" }
}
