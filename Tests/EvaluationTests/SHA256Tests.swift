import Evaluation
import Foundation
import XCTest

/// The cache key hash against FIPS 180-4's published vectors.
final class SHA256Tests: XCTestCase {
    func testKnownDigests() {
        XCTAssertEqual(SHA256.hexDigest(of: Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hexDigest(of: Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hexDigest(of: Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hexDigest(of: Data(repeating: UInt8(ascii: "a"), count: 1_000)),
                       "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    func testEveryPaddingLengthAroundABlockBoundaryHashesDifferently() {
        let digests = (50...70).map { SHA256.hexDigest(of: Data(repeating: 0x61, count: $0)) }
        XCTAssertEqual(Set(digests).count, digests.count)
        XCTAssertTrue(digests.allSatisfy { $0.count == 64 })
    }
}
