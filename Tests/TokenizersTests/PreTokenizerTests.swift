import XCTest

@testable import Tokenizers

/// Word boundaries of each pre-tokenizer, one regex alternative per test.
final class PreTokenizerTests: XCTestCase {
    func testGPT2AttachesOneLeadingSpaceToLettersNumbersAndPunctuation() {
        XCTAssertEqual(PreTokenizer.gpt2.words(in: "Hello world 42 !!"), ["Hello", " world", " 42", " !!"])
    }

    func testGPT2LeavesTheLastSpaceOfARunForTheNextWord() {
        XCTAssertEqual(PreTokenizer.gpt2.words(in: "a   b"), ["a", "  ", " b"])
    }

    func testGPT2KeepsTrailingWhitespaceAsOneWord() {
        XCTAssertEqual(PreTokenizer.gpt2.words(in: "a  \n "), ["a", "  \n "])
    }

    func testGPT2SplitsNewlinesBeforeTextOneByOne() {
        XCTAssertEqual(PreTokenizer.gpt2.words(in: "a\n\nb"), ["a", "\n", "\n", "b"])
    }

    func testGPT2ContractionsAreCaseSensitive() {
        XCTAssertEqual(PreTokenizer.gpt2.words(in: "it's I'LL"), ["it", "'s", " I", "'", "LL"])
    }

    func testGPT2TabIsNotASpacePrefix() {
        XCTAssertEqual(PreTokenizer.gpt2.words(in: "a\tb"), ["a", "\t", "b"])
    }

    func testSmolLMIsolatesEveryDigitIncludingAfterASpace() {
        XCTAssertEqual(PreTokenizer.smollm.words(in: "in 2024!"), ["in", " ", "2", "0", "2", "4", "!"])
    }

    func testSmolLMIsolatesNonASCIIDigits() {
        XCTAssertEqual(PreTokenizer.smollm.words(in: "x²٣"), ["x", "²", "٣"])
    }

    func testLlama3GroupsDigitsInThrees() {
        XCTAssertEqual(PreTokenizer.llamaBPE.words(in: "1234567"), ["123", "456", "7"])
    }

    func testQwen2IsolatesEveryDigit() {
        XCTAssertEqual(PreTokenizer.qwen2.words(in: "123"), ["1", "2", "3"])
    }

    func testLlama3ContractionsIgnoreCase() {
        XCTAssertEqual(PreTokenizer.llamaBPE.words(in: "I'LL it's"), ["I", "'LL", " it", "'s"])
    }

    func testLlama3AttachesOnePunctuationOrWhitespaceCharacterToLetters() {
        XCTAssertEqual(PreTokenizer.llamaBPE.words(in: "(word\tnext"), ["(word", "\tnext"])
    }

    func testLlama3AbsorbsNewlinesAfterPunctuation() {
        XCTAssertEqual(PreTokenizer.llamaBPE.words(in: "end.\n\nNext"), ["end", ".\n\n", "Next"])
    }

    func testLlama3EndsAWhitespaceRunAtItsLastNewline() {
        XCTAssertEqual(PreTokenizer.llamaBPE.words(in: "a  \n\n  b"), ["a", "  \n\n", " ", " b"])
    }

    func testWordsTileTheInput() {
        let text = "Mixed 3D-printing\r\n in 2024, 你好 👨‍👩‍👧 \t\n"
        for preTokenizer in PreTokenizer.allCases {
            XCTAssertEqual(preTokenizer.words(in: text).joined(), text, "\(preTokenizer)")
        }
    }
}
