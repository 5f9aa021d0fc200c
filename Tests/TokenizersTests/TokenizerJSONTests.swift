import XCTest

@testable import Tokenizers

/// Loading tokenizer.json: what is recognised and how the rest fails.
final class TokenizerJSONTests: XCTestCase {
    private func json(preTokenizer: String, normalizer: String = "null", merges: String = #"["a b"]"#) -> Data {
        Data("""
            {"normalizer": \(normalizer), "pre_tokenizer": \(preTokenizer), "decoder": {"type": "ByteLevel"},
             "added_tokens": [{"id": 3, "content": "<|im_end|>", "special": true},
                              {"id": 4, "content": "<think>", "special": false}],
             "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": \(merges)}}
            """.utf8)
    }

    private let byteLevel = #"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}"#

    /// Issue 16 item 1: a huge id sized the id table unchecked (an abort, or an overflow trap).
    func testAHugeTokenIDIsRejectedNamingTheEntry() {
        for id in ["1099511627776", "9223372036854775807"] {
            let data = Data(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": \#(id)}, "merges": []}}"#.utf8)
            XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: data)) { error in
                XCTAssertTrue("\(error)".contains("model.vocab[b]") && "\(error)".contains("id \(id) is beyond the cap of 16777216 token ids"), "\(error)")
            }
        }
        let added = Data(#"{"added_tokens": [{"id": 1099511627776, "content": "<x>"}], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}"#.utf8)
        XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: added)) { error in
            XCTAssertTrue("\(error)".contains("added_tokens[0]"), "\(error)")
        }
    }

    func testByteLevelAloneIsGPT2() throws {
        XCTAssertEqual(try BPETokenizer(tokenizerJSON: json(preTokenizer: byteLevel)).preTokenizer, .gpt2)
    }

    func testDigitsThenByteLevelIsSmolLM() throws {
        let config = #"{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, "#
            + byteLevel + "]}"
        XCTAssertEqual(try BPETokenizer(tokenizerJSON: json(preTokenizer: config)).preTokenizer, .smollm)
    }

    func testStringAndArrayMergesAreEquivalent() throws {
        let strings = try BPETokenizer(tokenizerJSON: json(preTokenizer: byteLevel, merges: #"["a b"]"#))
        let arrays = try BPETokenizer(tokenizerJSON: json(preTokenizer: byteLevel, merges: #"[["a", "b"]]"#))
        XCTAssertEqual(strings.encode("ab"), [2])
        XCTAssertEqual(arrays.encode("ab"), [2])
    }

    func testAddedTokensBecomeControlOrUserDefinedByTheirSpecialFlag() throws {
        let tokenizer = try BPETokenizer(tokenizerJSON: json(preTokenizer: byteLevel), eosToken: "<|im_end|>")
        XCTAssertEqual(tokenizer.tokenTypes[3], .control)
        XCTAssertEqual(tokenizer.tokenTypes[4], .userDefined)
        XCTAssertEqual(tokenizer.eosID, 3)
    }

    func testAnUnsupportedPreTokenizerIsNamedInTheError() {
        let config = #"{"type": "Whitespace"}"#
        XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: json(preTokenizer: config))) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("Whitespace"), message)
            XCTAssertTrue(message.contains("smollm"), message)
        }
    }

    func testAnUnknownSplitRegexIsNamedInTheError() {
        let config = #"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\s+"}, "#
            + #""behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]}"#
        XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: json(preTokenizer: config))) { error in
            XCTAssertTrue(String(describing: error).contains(#"Split(\s+, Isolated)"#), String(describing: error))
        }
    }

    func testAnUnsupportedNormalizerIsNamedInTheError() {
        XCTAssertThrowsError(
            try BPETokenizer(tokenizerJSON: json(preTokenizer: byteLevel, normalizer: #"{"type": "Lowercase"}"#))
        ) { error in
            XCTAssertTrue(String(describing: error).contains("Lowercase"))
        }
    }

    func testAnUnknownSpecialTokenNameFails() {
        XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: json(preTokenizer: byteLevel), eosToken: "</s>")) { error in
            XCTAssertEqual(error as? TokenizerError, .unknownSpecialToken(role: "eos", token: "</s>"))
        }
    }

    func testMalformedJSONFailsWithTheSourceName() {
        XCTAssertThrowsError(try BPETokenizer(tokenizerJSON: Data("{".utf8), source: "x/tokenizer.json")) { error in
            XCTAssertTrue(String(describing: error).hasPrefix("x/tokenizer.json"))
        }
    }
}
