import XCTest

@testable import Tokenizers

/// Ids must equal the Hugging Face `tokenizers` reference exactly (fixtures from
/// scripts/reference/make_tokenizer_fixtures.py).
final class ReferenceFixtureTests: XCTestCase {
    func testSmolLM2MatchesTheReferenceOnTheCorpus() throws {
        let tokenizer = try Fixtures.smolLM2()
        let fixture = try Fixtures.decode(IDFixture.self, "smollm2_ids.json")
        XCTAssertEqual(tokenizer.preTokenizer.ggufName, fixture.pre_tokenizer)
        for testCase in fixture.cases {
            assertSameIDs(tokenizer.encode(testCase.text, addBOS: false), testCase.ids, text: testCase.text)
        }
    }

    func testSmolLM2DecodesTheCorpusLikeTheReference() throws {
        let tokenizer = try Fixtures.smolLM2()
        let fixture = try Fixtures.decode(IDFixture.self, "smollm2_ids.json")
        for testCase in fixture.cases {
            XCTAssertEqual(try tokenizer.decode(testCase.ids), testCase.decoded)
        }
    }

    func testSmolLM2DecodesEveryPrefixOfSplitCharactersLikeTheReference() throws {
        let tokenizer = try Fixtures.smolLM2()
        let prefixes = try XCTUnwrap(try Fixtures.decode(IDFixture.self, "smollm2_ids.json").prefix_decodes)
        XCTAssertFalse(prefixes.isEmpty)
        for prefix in prefixes {
            XCTAssertEqual(try tokenizer.decode(prefix.ids), prefix.decoded, "ids \(prefix.ids)")
        }
    }

    func testLlama3TinyTokenizerMatchesTheReference() throws {
        try assertMatchesReference(tokenizer: "llama3_tiny_tokenizer.json", ids: "llama3_tiny_ids.json")
    }

    func testQwen2TinyTokenizerMatchesTheReference() throws {
        try assertMatchesReference(tokenizer: "qwen2_tiny_tokenizer.json", ids: "qwen2_tiny_ids.json")
    }

    func testLlama3TinyTokenizerAddsBOSFromItsPostProcessor() throws {
        let tokenizer = try BPETokenizer(tokenizerJSON: Fixtures.data("llama3_tiny_tokenizer.json"))
        XCTAssertTrue(tokenizer.addBOS)
        XCTAssertEqual(tokenizer.bosID, tokenizer.tokenID(for: "<|begin_of_text|>"))
        let fixture = try Fixtures.decode(IDFixture.self, "llama3_tiny_ids.json")
        for testCase in fixture.cases {
            let expected = try XCTUnwrap(testCase.ids_with_special_tokens_added)
            assertSameIDs(tokenizer.encode(testCase.text), expected, text: testCase.text)
        }
    }

    func testLlama3TinyTokenizerReadsArrayMergesAndQwen2StringMerges() throws {
        let llama = try JSONSerialization.jsonObject(with: Fixtures.data("llama3_tiny_tokenizer.json")) as? [String: Any]
        let qwen = try JSONSerialization.jsonObject(with: Fixtures.data("qwen2_tiny_tokenizer.json")) as? [String: Any]
        XCTAssertTrue(((llama?["model"] as? [String: Any])?["merges"] as? [Any])?.first is [String])
        XCTAssertTrue(((qwen?["model"] as? [String: Any])?["merges"] as? [Any])?.first is String)
    }

    func testQwen2TinyTokenizerNormalisesToNFC() throws {
        let tokenizer = try BPETokenizer(tokenizerJSON: Fixtures.data("qwen2_tiny_tokenizer.json"))
        XCTAssertTrue(tokenizer.normalizesToNFC)
        XCTAssertEqual(tokenizer.encode("e\u{301}"), tokenizer.encode("\u{E9}"))
    }

    private func assertMatchesReference(tokenizer tokenizerFile: String, ids idsFile: String) throws {
        let tokenizer = try BPETokenizer(tokenizerJSON: Fixtures.data(tokenizerFile), source: tokenizerFile)
        let fixture = try Fixtures.decode(IDFixture.self, idsFile)
        XCTAssertEqual(tokenizer.preTokenizer.ggufName, fixture.pre_tokenizer)
        for testCase in fixture.cases {
            assertSameIDs(tokenizer.encode(testCase.text, addBOS: false), testCase.ids, text: testCase.text)
            XCTAssertEqual(try tokenizer.decode(testCase.ids), testCase.decoded)
        }
    }
}
