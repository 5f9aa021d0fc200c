import Foundation
import Tensors
import Training
import XCTest

/// A fresh temporary directory per test, removed afterwards.
class TemporaryDirectoryTestCase: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tc-training-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
}

final class HDF5FileTests: TemporaryDirectoryTestCase {
    func testTensorRoundTripsWithShapeAndBits() throws {
        let tensor = try Tensor(shape: [2, 3, 2], scalars: (0..<12).map { Float($0) * 0.1 - .pi })
        let file = try HDF5File.create(path: path("t.h5"))
        try file.writeTensor(tensor, at: "/a/b/model.layers.0.self_attn.q_proj/lora_A")
        try file.close()
        let back = try HDF5File.open(path: path("t.h5")).readTensor(at: "/a/b/model.layers.0.self_attn.q_proj/lora_A")
        XCTAssertEqual(back.shape, [2, 3, 2])
        XCTAssertEqual(back.scalars.map(\.bitPattern), tensor.scalars.map(\.bitPattern))
    }

    func testTensorViewWritesOnlyItsRows() throws {
        let tensor = try Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6]).rows(1..<3)
        let file = try HDF5File.create(path: path("v.h5"))
        try file.writeTensor(tensor, at: "/v")
        XCTAssertEqual(try file.readTensor(at: "/v").scalars, [3, 4, 5, 6])
    }

    func testIntegerDatasetsRoundTrip() throws {
        let file = try HDF5File.create(path: path("i.h5"))
        try file.writeInt64s([3, -1, .max, .min], at: "/data/order")
        try file.writeUInt64s([0, .max, 42], at: "/rng")
        XCTAssertEqual(try file.readInt64s(at: "/data/order"), [3, -1, .max, .min])
        XCTAssertEqual(try file.readUInt64s(at: "/rng"), [0, .max, 42])
    }

    func testStringDatasetsRoundTripInBothStorages() throws {
        let text = "run:\n  name: \"démo ✓\"\n"
        let file = try HDF5File.create(path: path("s.h5"))
        try file.writeString(text, at: "/variable", storage: .variableLength)
        try file.writeString(text, at: "/fixed", storage: .fixedLength)
        try file.writeString("", at: "/empty", storage: .fixedLength)
        XCTAssertEqual(try file.readString(at: "/variable"), text)
        XCTAssertEqual(try file.readString(at: "/fixed"), text)
        XCTAssertEqual(try file.readString(at: "/empty"), "")
    }

    func testAttributesOfEveryKindRoundTripOnRootGroupsAndDatasets() throws {
        let file = try HDF5File.create(path: path("a.h5"))
        try file.createGroup("/g/h")
        try file.writeInt64s([1], at: "/g/d")
        let values: [HDF5AttributeValue] = [.string("thoughtcrime ✓"), .int64(-7), .double(2.5e-4), .bool(true), .bool(false)]
        for object in ["/", "/g/h", "/g/d"] {
            for (i, value) in values.enumerated() { try file.setAttribute("a\(i)", value, on: object) }
        }
        try file.close()
        let reopened = try HDF5File.open(path: path("a.h5"))
        for object in ["/", "/g/h", "/g/d"] {
            XCTAssertEqual(try reopened.attributeNames(on: object), ["a0", "a1", "a2", "a3", "a4"])
            for (i, value) in values.enumerated() { XCTAssertEqual(try reopened.attribute("a\(i)", on: object), value) }
        }
    }

    func testSettingAnAttributeTwiceReplacesIt() throws {
        let file = try HDF5File.create(path: path("r.h5"))
        try file.setAttribute("step", .int64(1))
        try file.setAttribute("step", .string("two"))
        XCTAssertEqual(try file.attribute("step"), .string("two"))
    }

    func testChildrenAreListedByName() throws {
        let file = try HDF5File.create(path: path("c.h5"))
        try file.createGroup("/adapter/model.layers.1.mlp.up_proj")
        try file.createGroup("/adapter/model.layers.0.self_attn.q_proj")
        try file.writeInt64s([1], at: "/adapter/x")
        XCTAssertEqual(try file.children(of: "/adapter"),
                       ["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.up_proj", "x"])
        XCTAssertEqual(try file.kind(of: "/adapter/x"), .dataset)
        XCTAssertEqual(try file.kind(of: "/adapter"), .group)
    }

    func testMissingObjectErrorNamesFileAndPath() throws {
        let file = try HDF5File.create(path: path("m.h5"))
        XCTAssertThrowsError(try file.readTensor(at: "/no/such")) { error in
            XCTAssertEqual(error as? HDF5Error, .objectNotFound(file: path("m.h5"), object: "/no/such"))
        }
        XCTAssertThrowsError(try file.attribute("nope", on: "/")) { error in
            XCTAssertEqual(error as? HDF5Error, .attributeNotFound(file: path("m.h5"), object: "/", attribute: "nope"))
        }
    }

    func testReadingTheWrongTypeIsATypedError() throws {
        let file = try HDF5File.create(path: path("w.h5"))
        try file.writeInt64s([1, 2], at: "/ints")
        XCTAssertThrowsError(try file.readTensor(at: "/ints")) { error in
            guard case .wrongDataType? = error as? HDF5Error else { return XCTFail("\(error)") }
        }
    }

    func testOpeningGarbageGivesTheLibraryReason() throws {
        XCTAssertTrue(FileManager.default.createFile(atPath: path("g.h5"), contents: Data(repeating: 0x41, count: 4096)))
        XCTAssertThrowsError(try HDF5File.open(path: path("g.h5"))) { error in
            guard case let .cannotOpen(file, reason)? = error as? HDF5Error else { return XCTFail("\(error)") }
            XCTAssertEqual(file, path("g.h5"))
            XCTAssertFalse(reason.isEmpty)
        }
    }

    func testUsingAClosedFileThrows() throws {
        let file = try HDF5File.create(path: path("x.h5"))
        try file.close()
        XCTAssertThrowsError(try file.writeInt64s([1], at: "/a")) { error in
            XCTAssertEqual(error as? HDF5Error, .fileClosed(file: path("x.h5")))
        }
    }
}
