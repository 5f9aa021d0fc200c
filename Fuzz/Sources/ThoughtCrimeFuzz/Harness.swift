import Evaluation
import Foundation
import ModelFormats
import Tokenizers
import Training

/// One libFuzzer entry point for every parser that reads untrusted input; the parser is
/// chosen by THOUGHTCRIME_FUZZ_TARGET. An input may be rejected with any thrown error: what the
/// harness catches is a crash, a trap, a hang or a memory error (AddressSanitizer).
enum FuzzTarget: String, CaseIterable {
    case gguf, safetensors, safetensorsIndex = "safetensors-index", tokenizer, checkpoint
    case config, evalConfig = "eval-config", questions, jsonl, chatRequest = "chat-request"
}

/// Inputs that go through a file are written here (a tmpfs when /dev/shm exists).
let scratchDirectory: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let dir = (base as NSString).appendingPathComponent("thoughtcrime-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}()

let target: FuzzTarget = {
    guard let name = ProcessInfo.processInfo.environment["THOUGHTCRIME_FUZZ_TARGET"], let t = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("set THOUGHTCRIME_FUZZ_TARGET to one of: \(names)\n".utf8))
        exit(2)
    }
    return t
}()

/// The chat request harness plans against a small real tokenizer (the test fixture).
let chatTokenizer: BPETokenizer? = {
    let path = ProcessInfo.processInfo.environment["THOUGHTCRIME_FUZZ_TOKENIZER"] ?? "Tests/TokenizersTests/Fixtures/qwen2_tiny_tokenizer.json"
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return try? BPETokenizer(tokenizerJSON: data, eosToken: "<|im_end|>")
}()

let indexShards: Void = {
    let fixtures = "Tests/ModelsTests/Fixtures/tiny-llama-sharded"
    for name in (try? FileManager.default.contentsOfDirectory(atPath: fixtures)) ?? [] where name.hasSuffix(".safetensors") {
        try? FileManager.default.copyItem(atPath: "\(fixtures)/\(name)", toPath: (scratchDirectory as NSString).appendingPathComponent(name))
    }
}()

let checkpointIsolation: Void = {
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    CheckpointReader.isolation = CheckpointIsolation(executable: executable, arguments: [childReadArgument], timeout: 15)
}()

/// The argument that makes the harness binary the checkpoint-reading child.
let childReadArgument = "--read-checkpoint"

func withFile(_ name: String, _ bytes: Data, _ body: (String) throws -> Void) {
    let path = (scratchDirectory as NSString).appendingPathComponent(name)
    FileManager.default.createFile(atPath: path, contents: bytes)
    defer { try? FileManager.default.removeItem(atPath: path) }
    _ = try? body(path)
}

func run(_ bytes: Data) {
    switch target {
    case .gguf:
        withFile("input.gguf", bytes) { path in
            let file = try GGUFFile(path: path)
            // Reading tensors touches every declared offset and size.
            for info in file.tensors.prefix(4) { _ = try? file.dequantize(info) }
        }
    case .safetensors:
        withFile("model.safetensors", bytes) { path in
            let file = try SafetensorsFile(path: path)
            for name in file.tensorNames.prefix(4) { _ = try? file.tensor(named: name) }
        }
    case .safetensorsIndex:
        // The index names shards beside it: the sharded test fixture's shards are there to be found.
        _ = indexShards
        withFile("model.safetensors.index.json", bytes) { path in _ = try SafetensorsCheckpoint(path: path) }
    case .tokenizer:
        guard let tokenizer = try? BPETokenizer(tokenizerJSON: bytes, eosToken: "</s>") else { return }
        let ids = tokenizer.encode("Hello, wörld! <|im_start|> 12345")
        _ = try? tokenizer.decode(ids)
    case .checkpoint:
        // As the CLI reads them: the whole read first runs in a child (this binary with
        // `--read-checkpoint`), so a crash inside libhdf5 is a rejected file, not a crash here.
        _ = checkpointIsolation
        withFile("step-000001.h5", bytes) { path in _ = try CheckpointReader.read(path) }
    case .config:
        _ = try? RunConfig.parse(yaml: String(decoding: bytes, as: UTF8.self), source: "fuzz.yaml")
    case .evalConfig:
        _ = try? EvalConfig.parse(yaml: String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml")
    case .questions:
        _ = try? QuestionSuite(yaml: String(decoding: bytes, as: UTF8.self), path: "fuzz.yaml")
    case .jsonl:
        withFile("rows.jsonl", bytes) { path in
            for format in DataFormat.allCases {
                _ = try? JSONLDataset.load(path: path, format: format, pairedAnswer: .misaligned, onBadRow: .skip,
                                           preferencePairs: format == .preference)
            }
        }
    case .chatRequest:
        guard let tokenizer = chatTokenizer else { return }
        _ = ChatCompletionServer.rejection(of: bytes, tokenizer: tokenizer, template: .qwen2, contextLength: 512)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    run(data.map { Data(bytes: $0, count: size) } ?? Data())
    return 0
}

/// libFuzzer's driver, called from the entry point SwiftPM gives an executable target (it
/// links `main` to `ThoughtCrimeFuzz_main`, so libFuzzer's own `main` is not used).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("ThoughtCrimeFuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    if argc == 3, let flag = argv?[1], String(cString: flag) == childReadArgument, let path = argv?[2] {
        return CheckpointIsolation.readInChild(path: String(cString: path))
    }
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector, fuzzOneInput)
}
