import Evaluation
import XCTest

/// How replies divide into `reasoning_content` and `content`, and what streaming may send early.
final class ReasoningSplitterTests: XCTestCase {
    func testThinkingOnStartsInsideTheBlock() {
        let splitter = ReasoningSplitter(start: .insideThinkBlock(prefill: "Okay, "))
        XCTAssertEqual(splitter.split("so 4.\n</think>\n\nIt is 4.", isFinal: true),
                       ReplyParts(reasoning: "Okay, so 4.", content: "It is 4."))
        XCTAssertEqual(splitter.split("still thinking", isFinal: true),
                       ReplyParts(reasoning: "Okay, still thinking", content: ""), "no </think>: all is reasoning")
    }

    func testThinkingOffIsAllContent() {
        let splitter = ReasoningSplitter(start: .outsideThinkBlock)
        XCTAssertEqual(splitter.split("a </think> b", isFinal: true), ReplyParts(reasoning: nil, content: "a </think> b"))
    }

    func testNativeThinkingDetectsABlockTheModelOpens() {
        let splitter = ReasoningSplitter(start: .detect)
        XCTAssertEqual(splitter.split("<think>\nhmm\n</think>\n\nyes", isFinal: true), ReplyParts(reasoning: "hmm", content: "yes"))
        XCTAssertEqual(splitter.split("plain", isFinal: true), ReplyParts(reasoning: nil, content: "plain"))
        XCTAssertEqual(splitter.split("<thi", isFinal: false), ReplyParts(reasoning: nil, content: ""), "could still open a block")
        XCTAssertEqual(splitter.split("<thi", isFinal: true), ReplyParts(reasoning: nil, content: "<thi"))
    }

    func testStreamingHoldsBackWhatTheNextTokensMayChange() {
        let splitter = ReasoningSplitter(start: .insideThinkBlock(prefill: ""), stopStrings: ["STOP"])
        XCTAssertEqual(splitter.split("abc\n</thi", isFinal: false).reasoning, "abc", "a partial </think> and the newline before it")
        XCTAssertEqual(splitter.split("abc</think>\n\nxyST", isFinal: false).content, "xy", "a partial stop string")
        XCTAssertEqual(splitter.split("abc</think>x\u{FFFD}", isFinal: false).content, "x", "half a character")
    }

    func testStreamedPrefixesAlwaysExtendToTheFinalSplit() {
        let text = "Let me see.\n\n</think>\n\nThe answer is 4 é.\n"
        for start in [ReasoningSplitter.Start.insideThinkBlock(prefill: "Hm. "), .outsideThinkBlock, .detect] {
            for candidate in [text, "<think>\n" + text] {
                let splitter = ReasoningSplitter(start: start, stopStrings: ["4 é."])
                let final = splitter.split(candidate, isFinal: true)
                let scalars = Array(candidate.unicodeScalars)
                for n in 0...scalars.count {
                    let prefix = String(String.UnicodeScalarView(scalars[..<n]))
                    let partial = splitter.split(prefix, isFinal: false)
                    XCTAssertTrue(final.content.unicodeScalars.starts(with: partial.content.unicodeScalars), "\(start) \(prefix.debugDescription)")
                    XCTAssertTrue((final.reasoning ?? "").unicodeScalars.starts(with: (partial.reasoning ?? "").unicodeScalars),
                                  "\(start) \(prefix.debugDescription)")
                }
            }
        }
    }
}
