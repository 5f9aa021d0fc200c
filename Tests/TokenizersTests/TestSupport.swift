import Foundation
import ModelFormats
import XCTest

@testable import Tokenizers

/// One corpus string with the reference tokenizer's ids and decoded text.
struct IDCase: Decodable {
    let text: String
    let ids: [Int32]
    let decoded: String
    let ids_with_special_tokens_added: [Int32]?
}

struct IDFixture: Decodable {
    struct PrefixDecode: Decodable {
        let ids: [Int32]
        let decoded: String
    }
    let pre_tokenizer: String
    let cases: [IDCase]
    let prefix_decodes: [PrefixDecode]?
}

struct ChatFixture: Decodable {
    struct Message: Decodable {
        let role: String
        let content: String
    }
    struct Conversation: Decodable {
        let name: String
        let messages: [Message]
        let add_generation_prompt: Bool
        let text: String
        let ids: [Int32]
    }
    let conversations: [Conversation]
}

enum Fixtures {
    static func url(_ name: String) throws -> URL {
        guard let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw XCTSkip("Fixtures folder not bundled")
        }
        return folder.appendingPathComponent(name)
    }

    static func data(_ name: String) throws -> Data { try Data(contentsOf: url(name)) }

    static func decode<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        try JSONDecoder().decode(type, from: data(name))
    }

    /// <package root>/checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf, or a skip.
    static func smolLM2GGUFPath() throws -> String {
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("run scripts/fetch-model.sh to fetch the base model")
        }
        return path
    }

    /// The SmolLM2 tokenizer from the real GGUF, loaded once for the whole test run.
    static func smolLM2() throws -> BPETokenizer {
        let path = try smolLM2GGUFPath()
        return try SmolLM2Cache.shared.tokenizer(path: path)
    }

    /// A tiny vocabulary over "a", "b", "c", " " with merges "a b" (rank 0), "ab c" (1), "b c" (2).
    static func tinyTokenizer(
        extraTokens: [(String, TokenType)] = [], preTokenizer: PreTokenizer = .gpt2
    ) throws -> BPETokenizer {
        var tokens = (0..<256).map { String(ByteLevel.characterForByte[$0]) }
        tokens += ["ab", "abc", "bc"]
        var types = [Int32](repeating: TokenType.normal.rawValue, count: tokens.count)
        for (token, type) in extraTokens {
            tokens.append(token)
            types.append(type.rawValue)
        }
        return try BPETokenizer(
            tokens: tokens, merges: ["a b", "ab c", "b c"], tokenTypes: types, preTokenizer: preTokenizer)
    }
}

private final class SmolLM2Cache: @unchecked Sendable {
    static let shared = SmolLM2Cache()
    private let lock = NSLock()
    private var loaded: BPETokenizer?

    func tokenizer(path: String) throws -> BPETokenizer {
        lock.lock()
        defer { lock.unlock() }
        if let loaded { return loaded }
        let tokenizer = try BPETokenizer(gguf: GGUFFile(path: path))
        loaded = tokenizer
        return tokenizer
    }
}

/// Compares two id sequences and, on mismatch, shows the text and the first differing position.
func assertSameIDs(
    _ actual: [Int32], _ expected: [Int32], text: String, file: StaticString = #filePath, line: UInt = #line
) {
    guard actual != expected else { return }
    let firstDifference = zip(actual, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(actual.count, expected.count)
    XCTFail(
        "ids differ for \(String(reflecting: text)) at index \(firstDifference):\n actual   \(actual)\n expected \(expected)",
        file: file, line: line)
}
