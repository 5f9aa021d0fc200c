import XCTest

@testable import Tokenizers

/// Behaviour of `BPETokenizer` on small hand-built vocabularies.
final class BPETokenizerTests: XCTestCase {
    func testByteLevelMappingSpellsSpaceAndNewlineAsGAndC() {
        XCTAssertEqual(ByteLevel.encode(Array(" \n".utf8)), "ĠĊ")
        XCTAssertEqual(ByteLevel.decode("ĠĊ"), Array(" \n".utf8))
    }

    func testByteLevelMappingIsABijectionOverAllBytes() {
        let all = (0..<256).map { UInt8($0) }
        XCTAssertEqual(ByteLevel.decode(ByteLevel.encode(all)), all)
        XCTAssertEqual(Set(ByteLevel.characterForByte.map(\.value)).count, 256)
    }

    func testMergesApplyInRankOrder() throws {
        let tokenizer = try Fixtures.tinyTokenizer()
        let abc = try XCTUnwrap(tokenizer.tokenID(for: "abc"))
        // "a b" (rank 0) beats "b c" (rank 2), then "ab c" (rank 1) completes the word.
        XCTAssertEqual(tokenizer.encode("abc"), [abc])
    }

    func testEqualRankMergesGoLeftmostFirst() throws {
        let tokenizer = try BPETokenizer(
            tokens: ["a", "aa"], merges: ["a a"], preTokenizer: .gpt2)
        XCTAssertEqual(tokenizer.encode("aaa"), [1, 0])
    }

    func testTextBetweenWordsIsNotMerged() throws {
        let tokenizer = try Fixtures.tinyTokenizer()
        let a = try XCTUnwrap(tokenizer.tokenID(for: "a"))
        let spaceB = [try XCTUnwrap(tokenizer.tokenID(for: "Ġ")), try XCTUnwrap(tokenizer.tokenID(for: "b"))]
        XCTAssertEqual(tokenizer.encode("a b"), [a] + spaceB)
    }

    func testControlTokensMatchOnlyWhenParsingSpecialTokens() throws {
        let tokenizer = try Fixtures.tinyTokenizer(extraTokens: [("<|end|>", .control)])
        let end = try XCTUnwrap(tokenizer.tokenID(for: "<|end|>"))
        XCTAssertEqual(tokenizer.encode("ab<|end|>").last, end)
        XCTAssertFalse(tokenizer.encode("ab<|end|>", parseSpecialTokens: false).contains(end))
        XCTAssertEqual(try tokenizer.decode(tokenizer.encode("ab<|end|>", parseSpecialTokens: false)), "ab<|end|>")
    }

    func testUserDefinedTokensAlwaysMatch() throws {
        let tokenizer = try Fixtures.tinyTokenizer(extraTokens: [("<think>", .userDefined)])
        let think = try XCTUnwrap(tokenizer.tokenID(for: "<think>"))
        XCTAssertEqual(tokenizer.encode("<think>", parseSpecialTokens: false), [think])
    }

    func testTheLongestSpecialTokenWins() throws {
        let tokenizer = try Fixtures.tinyTokenizer(extraTokens: [("<a>", .control), ("<a><b>", .control)])
        XCTAssertEqual(tokenizer.encode("<a><b>"), [try XCTUnwrap(tokenizer.tokenID(for: "<a><b>"))])
    }

    func testBOSIsPrependedOnRequest() throws {
        var tokens = (0..<256).map { String(ByteLevel.characterForByte[$0]) }
        tokens.append("<s>")
        let tokenizer = try BPETokenizer(
            tokens: tokens, merges: [], preTokenizer: .gpt2, bos: 256, addBOS: true)
        XCTAssertEqual(tokenizer.encode("a").first, 256)
        XCTAssertEqual(tokenizer.encode("a", addBOS: false).first, tokenizer.tokenID(for: "a"))
    }

    func testDecodeReassemblesCharactersSplitAcrossTokens() throws {
        let tokenizer = try Fixtures.tinyTokenizer()
        let ids = tokenizer.encode("é😀")  // no merges: one token per byte
        XCTAssertEqual(ids.count, 6)
        XCTAssertEqual(try tokenizer.decode(ids), "é😀")
    }

    func testDecodeShowsReplacementCharacterOnlyForAnIncompleteEnd() throws {
        let tokenizer = try Fixtures.tinyTokenizer()
        let ids = tokenizer.encode("a😀")
        XCTAssertEqual(try tokenizer.decode(Array(ids.dropLast())), "a\u{FFFD}")
    }

    func testTokenPieceIsTheTokensText() throws {
        let tokenizer = try Fixtures.tinyTokenizer()
        XCTAssertEqual(try tokenizer.tokenPiece(try XCTUnwrap(tokenizer.tokenID(for: "Ġ"))), " ")
    }

    func testDecodeSkipsControlTokensOnRequest() throws {
        let tokenizer = try Fixtures.tinyTokenizer(extraTokens: [("<|end|>", .control)])
        XCTAssertEqual(try tokenizer.decode(tokenizer.encode("ab<|end|>"), skipSpecialTokens: true), "ab")
    }

    func testDecodeRejectsIDsOutsideTheVocabulary() throws {
        let tokenizer = try Fixtures.tinyTokenizer()
        XCTAssertThrowsError(try tokenizer.decode([9999])) { error in
            XCTAssertEqual(error as? TokenizerError, .tokenIDOutOfRange(id: 9999, vocabularySize: 259))
        }
    }

    func testAMergeOutsideTheVocabularyNamesTheMissingPiece() {
        XCTAssertThrowsError(try BPETokenizer(tokens: ["a", "b"], merges: ["a b"], preTokenizer: .gpt2)) { error in
            XCTAssertEqual(
                error as? TokenizerError,
                .mergeNotInVocabulary(source: "tokenizer", index: 0, merge: "a b", missing: "ab"))
        }
    }

    func testTokenTypesMustMatchTheVocabularySize() {
        XCTAssertThrowsError(try BPETokenizer(tokens: ["a"], merges: [], tokenTypes: [1, 1], preTokenizer: .gpt2))
    }

    func testEncodingIsTheSameWithAWarmCache() throws {
        let tokenizer = try Fixtures.tinyTokenizer()
        let first = tokenizer.encode("abc abc bca")
        XCTAssertEqual(tokenizer.encode("abc abc bca"), first)
    }
}
