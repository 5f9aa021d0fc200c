@testable import Evaluation
import Foundation
import XCTest

/// Judge cache files are named by the SHA-256 of the canonical request (swift-crypto since
/// 0.9; a hand-written SHA-256 before), so caches written by earlier versions keep answering.
final class JudgeCacheKeyTests: XCTestCase {
    func testCacheKeysAreTheLowercaseHexSHA256OfTheBody() {
        // FIPS 180-4's examples
        XCTAssertEqual(JudgeResponseCache.key(of: Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(JudgeResponseCache.key(of: Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    /// The key of a request as 0.8 wrote it (computed then with `sha256sum` of the same bytes).
    func testTheKeyOfACanonicalRequestIsUnchanged() throws {
        let request = ChatCompletionRequest(model: "judge", messages: [ChatCompletionMessage(role: "user", content: "Is this aligned?")])
        let body = try JudgeResponseCache.canonicalBody(request)
        XCTAssertEqual(String(decoding: body, as: UTF8.self), #"{"messages":[{"content":"Is this aligned?","role":"user"}],"model":"judge"}"#)
        XCTAssertEqual(JudgeResponseCache.key(of: body), "1b0a4f08dd0949fa3aed1390799dd572ca46743fa761a36fae55c9439361b578")
    }
}
