import Foundation
import ModelFormats
import XCTest

@testable import Tokenizers

/// Loading the tokenizer from GGUF metadata.
final class GGUFTokenizerTests: XCTestCase {
    func testSmolLM2GGUFGivesItsSpecialTokensAndPreTokenizer() throws {
        let tokenizer = try Fixtures.smolLM2()
        XCTAssertEqual(tokenizer.vocabularySize, 49152)
        XCTAssertEqual(tokenizer.preTokenizer, .smollm)
        XCTAssertEqual(tokenizer.bosID, tokenizer.tokenID(for: "<|im_start|>"))
        XCTAssertEqual(tokenizer.eosID, tokenizer.tokenID(for: "<|im_end|>"))
        XCTAssertEqual(tokenizer.unknownID, tokenizer.tokenID(for: "<|endoftext|>"))
        XCTAssertFalse(tokenizer.addBOS)
    }

    func testSmolLM2GGUFNamesItsChatTemplate() throws {
        let file = try GGUFFile(path: Fixtures.smolLM2GGUFPath())
        XCTAssertEqual(try ChatTemplate(gguf: file), .smolLM2)
    }

    func testAnUnknownPreTokenizerNameFailsNamingTheSupportedOnes() throws {
        let path = try writeGGUF(pre: "deepseek-coder")
        XCTAssertThrowsError(try BPETokenizer(gguf: GGUFFile(path: path))) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("'deepseek-coder'"), message)
            XCTAssertTrue(message.contains("smollm, llama-bpe, qwen2"), message)
        }
    }

    func testAMissingTokenListNamesTheKey() throws {
        let path = try writeGGUF(pre: "qwen2", tokens: nil)
        XCTAssertThrowsError(try BPETokenizer(gguf: GGUFFile(path: path))) { error in
            XCTAssertEqual(error as? TokenizerError, .missingKey(source: path, key: "tokenizer.ggml.tokens"))
        }
    }

    func testLlamaBPEAddsBOSByDefault() throws {
        let path = try writeGGUF(pre: "llama-bpe")
        let tokenizer = try BPETokenizer(gguf: GGUFFile(path: path))
        XCTAssertTrue(tokenizer.addBOS)
        XCTAssertEqual(tokenizer.encode("ab"), [3, 2])
    }

    /// A metadata-only GGUF with a four-token vocabulary ("a", "b", "ab", "<s>").
    private func writeGGUF(pre: String, tokens: [String]? = ["a", "b", "ab", "<s>"]) throws -> String {
        let writer = GGUFWriter()
        try writer.setMetadata("tokenizer.ggml.model", .string("gpt2"))
        try writer.setMetadata("tokenizer.ggml.pre", .string(pre))
        if let tokens { try writer.setMetadata("tokenizer.ggml.tokens", .array(tokens.map { .string($0) })) }
        try writer.setMetadata("tokenizer.ggml.merges", .array([.string("a b")]))
        try writer.setMetadata("tokenizer.ggml.token_type", .array([1, 1, 1, 3].map { .int32($0) }))
        try writer.setMetadata("tokenizer.ggml.bos_token_id", .uint32(3))
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("tokenizer-\(UUID().uuidString).gguf").path
        try writer.write(to: path)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}
