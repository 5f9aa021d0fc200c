import CHDF5
import Foundation
import ModelFormats
import Tensors

/// A scalar attribute value. Booleans are stored as h5py stores them (an int8 enum with
/// members FALSE = 0 and TRUE = 1), so h5py reads them back as `numpy.bool_`.
public enum HDF5AttributeValue: Equatable, Sendable, CustomStringConvertible {
    case string(String)
    case int64(Int64)
    case double(Double)
    case bool(Bool)

    public var description: String {
        switch self {
        case let .string(s): return "'\(s)'"
        case let .int64(i): return String(i)
        case let .double(d): return String(d)
        case let .bool(b): return String(b)
        }
    }
}

/// How a string dataset stores its text: one variable-length string (h5py's default for `str`),
/// or a fixed-length, null-padded one sized to the text's UTF-8 bytes.
public enum HDF5StringStorage: Sendable { case variableLength, fixedLength }

/// What an object path names.
public enum HDF5ObjectKind: Equatable, Sendable { case group, dataset }

/// An open HDF5 file, through the HDF5 C library. Object paths are absolute, `/`-separated;
/// group names may contain dots (`/adapter/model.layers.0.self_attn.q_proj`).
///
/// HDF5's own error printing is silenced; failures become `HDF5Error`s naming the file, the
/// object, and HDF5's innermost error message. The serial HDF5 library is not thread-safe: use
/// one file from one thread at a time, and do not use two files concurrently.
///
/// Usage:
/// ```
/// let file = try HDF5File.create(path: "run/x.h5")
/// try file.writeTensor(t, at: "/adapter/q_proj/lora_A")
/// try file.setAttribute("step", .int64(100), on: "/")
/// try file.close()
/// ```
public final class HDF5File {
    public let path: String
    private var id: hid_t
    /// Bytes of the file when it was opened: no dataset, string or attribute read from it can
    /// need more, so every size the file declares is checked against this before allocating.
    private let sizeWhenOpened: Int

    private init(path: String, id: hid_t) {
        self.path = path
        self.id = id
        var info = stat()
        sizeWhenOpened = stat(path, &info) == 0 ? Int(info.st_size) : Int.max
    }

    /// Throws unless `count` elements of `elementBytes` each fit in the file.
    private func requireStored(count: Int, elementBytes: Int, _ object: String) throws {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: max(elementBytes, 1))
        guard !overflow, bytes <= sizeWhenOpened else {
            throw HDF5Error.implausibleSize(
                file: path, object: object,
                reason: "declares \(count) elements of \(elementBytes) bytes, more than the file's \(sizeWhenOpened) bytes can hold")
        }
    }

    /// The element count of a dataspace, checked for overflow.
    private func elementCount(_ dims: [hsize_t], _ object: String) throws -> Int {
        var count = 1
        for d in dims {
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(clamping: d))
            guard !overflow, d <= hsize_t(Int.max) else {
                throw HDF5Error.implausibleSize(file: path, object: object, reason: "its dimensions \(dims) overflow")
            }
            count = product
        }
        return count
    }

    /// Throws unless the attribute holds exactly one value (every attribute this project
    /// writes is a scalar; reading more into one value would overrun it).
    private func requireScalar(attribute: hid_t, _ object: String) throws {
        let space = H5Aget_space(attribute)
        guard space >= 0 else { throw failure("read dataspace of", object) }
        defer { H5Sclose(space) }
        guard H5Sget_simple_extent_npoints(space) == 1 else {
            throw HDF5Error.wrongDataType(file: path, object: object, expected: "one value", found: "\(H5Sget_simple_extent_npoints(space)) values")
        }
    }

    deinit { if id >= 0 { H5Fclose(id) } }

    /// Creates (truncating any existing file) and opens for writing.
    public static func create(path: String) throws -> HDF5File {
        HDF5Library.prepare()
        let id = H5Fcreate(path, tc_h5f_acc_trunc(), tc_h5p_default(), tc_h5p_default())
        guard id >= 0 else { throw HDF5Error.cannotCreate(file: path, reason: HDF5Library.lastErrorMessage()) }
        return HDF5File(path: path, id: id)
    }

    /// Opens an existing file, read-only unless `writable`.
    public static func open(path: String, writable: Bool = false) throws -> HDF5File {
        HDF5Library.prepare()
        // H5Fopen (and the heap check's read) would block on a FIFO for ever: only regular
        // files are opened.
        do { try InputFile.requireRegular(path) } catch let problem as InputFile.Problem {
            throw HDF5Error.cannotOpen(file: path, reason: problem.reason)
        }
        try HDF5GlobalHeapCheck.validate(path: path)
        let id = H5Fopen(path, writable ? tc_h5f_acc_rdwr() : tc_h5f_acc_rdonly(), tc_h5p_default())
        guard id >= 0 else { throw HDF5Error.cannotOpen(file: path, reason: HDF5Library.lastErrorMessage()) }
        return HDF5File(path: path, id: id)
    }

    /// Writes buffered data to the operating system (not necessarily to disk; fsync for that).
    public func flush() throws {
        let file = try openID()
        try check(H5Fflush(file, H5F_SCOPE_GLOBAL), "flush", "/")
    }

    /// Gives up a file whose writing failed: closes every object HDF5 still holds open for it
    /// and the file itself, ignoring errors (the library would otherwise retry the failed
    /// flush when the process exits). The file on disk is left for the caller to remove.
    public func abandon() {
        guard id >= 0 else { return }
        let file = id
        id = -1
        tc_h5_close_all_objects(file)
        H5Fclose(file)
    }

    /// Closes the file; later calls throw `fileClosed`. Closing twice is harmless.
    public func close() throws {
        guard id >= 0 else { return }
        let status = H5Fclose(id)
        id = -1
        try check(status, "close", "/")
    }

    // MARK: - Groups and listing

    /// Creates the group at `path` and any missing intermediate groups; existing groups are kept.
    public func createGroup(_ path: String) throws {
        let file = try openID()
        var current = ""
        for component in components(of: path) {
            current += "/" + component
            if try exists(current) {
                guard try kind(of: current) == .group else {
                    throw HDF5Error.wrongDataType(file: self.path, object: current, expected: "a group", found: "a dataset")
                }
                continue
            }
            let group = H5Gcreate2(file, current, tc_h5p_default(), tc_h5p_default(), tc_h5p_default())
            guard group >= 0 else { throw failure("create group", current) }
            H5Gclose(group)
        }
    }

    /// True when `path` names a group or dataset (every intermediate link is checked, since
    /// HDF5 reports an error rather than false for a missing parent).
    public func exists(_ path: String) throws -> Bool {
        let file = try openID()
        var current = ""
        for component in components(of: path) {
            current += "/" + component
            let status = H5Lexists(file, current, tc_h5p_default())
            if status < 0 { throw failure("look up", current) }
            if status == 0 { return false }
        }
        return true
    }

    public func kind(of path: String) throws -> HDF5ObjectKind {
        let object = try openObject(path)
        defer { H5Oclose(object) }
        switch H5Iget_type(object) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: throw HDF5Error.wrongDataType(file: self.path, object: path, expected: "a group or dataset", found: "another object")
        }
    }

    /// Names (not paths) of the groups and datasets directly under `path`, sorted by name.
    public func children(of path: String) throws -> [String] {
        let object = try openObject(path)
        defer { H5Oclose(object) }
        var info = H5G_info_t()
        try check(H5Gget_info(object, &info), "list", path)
        return try (0..<info.nlinks).map { index in
            try readName(path, "list") { buffer, size in
                H5Lget_name_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, index, buffer, size, tc_h5p_default())
            }
        }
    }

    // MARK: - Datasets

    /// Writes a Float32 dataset with the tensor's shape (a scalar for rank 0); creates parent
    /// groups and replaces an existing dataset of that name.
    public func writeTensor(_ tensor: Tensor, at path: String) throws {
        let contiguous = tensor.copy()  // a view may not start at its storage's first element
        try writeDataset(path, type: tc_h5t_native_float(), dims: tensor.shape.dims.map { hsize_t($0) }) { dset, type in
            H5Dwrite(dset, type, tc_h5s_all(), tc_h5s_all(), tc_h5p_default(), contiguous.pointer)
        }
    }

    public func readTensor(at path: String) throws -> Tensor {
        try readDataset(path, expectedClass: H5T_FLOAT, expected: "floating-point numbers") { dset, dims in
            let tensor = Tensor(zeros: Shape(dims))
            return (tensor, H5Dread(dset, tc_h5t_native_float(), tc_h5s_all(), tc_h5s_all(), tc_h5p_default(), tensor.pointer))
        }
    }

    public func writeInt64s(_ values: [Int64], at path: String) throws {
        try writeDataset(path, type: tc_h5t_native_int64(), dims: [hsize_t(values.count)]) { dset, type in
            values.withUnsafeBufferPointer { H5Dwrite(dset, type, tc_h5s_all(), tc_h5s_all(), tc_h5p_default(), $0.baseAddress) }
        }
    }

    public func readInt64s(at path: String) throws -> [Int64] {
        try readDataset(path, expectedClass: H5T_INTEGER, expected: "integers") { dset, dims in
            var values = [Int64](repeating: 0, count: dims.reduce(1, *))
            let status = values.withUnsafeMutableBufferPointer {
                H5Dread(dset, tc_h5t_native_int64(), tc_h5s_all(), tc_h5s_all(), tc_h5p_default(), $0.baseAddress)
            }
            return (values, status)
        }
    }

    public func writeUInt64s(_ values: [UInt64], at path: String) throws {
        try writeDataset(path, type: tc_h5t_native_uint64(), dims: [hsize_t(values.count)]) { dset, type in
            values.withUnsafeBufferPointer { H5Dwrite(dset, type, tc_h5s_all(), tc_h5s_all(), tc_h5p_default(), $0.baseAddress) }
        }
    }

    public func readUInt64s(at path: String) throws -> [UInt64] {
        try readDataset(path, expectedClass: H5T_INTEGER, expected: "integers") { dset, dims in
            var values = [UInt64](repeating: 0, count: dims.reduce(1, *))
            let status = values.withUnsafeMutableBufferPointer {
                H5Dread(dset, tc_h5t_native_uint64(), tc_h5s_all(), tc_h5s_all(), tc_h5p_default(), $0.baseAddress)
            }
            return (values, status)
        }
    }

    /// Writes one UTF-8 string as a scalar dataset.
    public func writeString(_ text: String, at path: String, storage: HDF5StringStorage = .variableLength) throws {
        let type = try stringType(storage == .variableLength ? nil : text.utf8.count, path)
        defer { H5Tclose(type) }
        try writeDataset(path, type: type, dims: nil) { dset, type in
            text.withCString { cString in
                switch storage {
                case .variableLength:
                    var pointer: UnsafePointer<CChar>? = cString
                    return H5Dwrite(dset, type, tc_h5s_all(), tc_h5s_all(), tc_h5p_default(), &pointer)
                case .fixedLength:
                    return H5Dwrite(dset, type, tc_h5s_all(), tc_h5s_all(), tc_h5p_default(), cString)
                }
            }
        }
    }

    /// Reads a scalar string dataset, variable- or fixed-length.
    public func readString(at path: String) throws -> String {
        let dset = try openDataset(path)
        defer { H5Dclose(dset) }
        let fileType = H5Dget_type(dset)
        guard fileType >= 0 else { throw failure("read type of", path) }
        defer { H5Tclose(fileType) }
        guard H5Tget_class(fileType) == H5T_STRING else {
            throw HDF5Error.wrongDataType(file: self.path, object: path, expected: "a string", found: typeName(fileType))
        }
        let space = H5Dget_space(dset)
        defer { H5Sclose(space) }
        guard H5Sget_simple_extent_npoints(space) == 1 else {
            throw HDF5Error.wrongDataType(file: self.path, object: path, expected: "one string", found: "several strings")
        }
        return try readStringValue(type: fileType, path) { memType, buffer in
            H5Dread(dset, memType, tc_h5s_all(), tc_h5s_all(), tc_h5p_default(), buffer)
        }
    }

    // MARK: - Attributes

    /// Sets (or replaces) a scalar attribute on the group or dataset at `object` ("/" for the root).
    public func setAttribute(_ name: String, _ value: HDF5AttributeValue, on object: String = "/") throws {
        let target = try openObject(object)
        defer { H5Oclose(target) }
        let existing = H5Aexists(target, name)
        if existing < 0 { throw failure("check attribute '\(name)' on", object) }
        if existing > 0, H5Adelete(target, name) < 0 { throw failure("replace attribute '\(name)' on", object) }

        let type: hid_t
        switch value {
        case .string: type = try stringType(nil, object)
        case .int64: type = H5Tcopy(tc_h5t_native_int64())
        case .double: type = H5Tcopy(tc_h5t_native_double())
        case .bool: type = try boolType(object)
        }
        defer { H5Tclose(type) }
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        let attribute = H5Acreate2(target, name, type, space, tc_h5p_default(), tc_h5p_default())
        guard attribute >= 0 else { throw failure("create attribute '\(name)' on", object) }
        defer { H5Aclose(attribute) }
        let status: herr_t
        switch value {
        case let .string(s):
            status = s.withCString { cString in
                var pointer: UnsafePointer<CChar>? = cString
                return H5Awrite(attribute, type, &pointer)
            }
        case let .int64(i):
            var v = i
            status = H5Awrite(attribute, type, &v)
        case let .double(d):
            var v = d
            status = H5Awrite(attribute, type, &v)
        case let .bool(b):
            var v: Int8 = b ? 1 : 0
            status = H5Awrite(attribute, type, &v)
        }
        try check(status, "write attribute '\(name)' on", object)
    }

    /// Reads a scalar attribute. Integers read as `.int64`, floats as `.double`, strings
    /// (variable or fixed length) as `.string`, and h5py-style booleans as `.bool`.
    public func attribute(_ name: String, on object: String = "/") throws -> HDF5AttributeValue {
        let target = try openObject(object)
        defer { H5Oclose(target) }
        let existing = H5Aexists(target, name)
        if existing < 0 { throw failure("check attribute '\(name)' on", object) }
        if existing == 0 { throw HDF5Error.attributeNotFound(file: path, object: object, attribute: name) }
        let attribute = H5Aopen(target, name, tc_h5p_default())
        guard attribute >= 0 else { throw failure("open attribute '\(name)' on", object) }
        defer { H5Aclose(attribute) }
        let fileType = H5Aget_type(attribute)
        guard fileType >= 0 else { throw failure("read type of attribute '\(name)' on", object) }
        defer { H5Tclose(fileType) }
        let what = "attribute '\(name)' on"
        try requireScalar(attribute: attribute, object + "@" + name)
        switch H5Tget_class(fileType) {
        case H5T_INTEGER:
            var v: Int64 = 0
            try check(H5Aread(attribute, tc_h5t_native_int64(), &v), "read \(what)", object)
            return .int64(v)
        case H5T_FLOAT:
            var v: Double = 0
            try check(H5Aread(attribute, tc_h5t_native_double(), &v), "read \(what)", object)
            return .double(v)
        case H5T_ENUM:
            let memType = try boolType(object)
            defer { H5Tclose(memType) }
            var v: Int8 = 0
            guard H5Aread(attribute, memType, &v) >= 0 else {
                throw HDF5Error.wrongDataType(file: path, object: object + "@" + name, expected: "a boolean enum", found: "another enum")
            }
            return .bool(v != 0)
        case H5T_STRING:
            return .string(try readStringValue(type: fileType, object) { memType, buffer in
                H5Aread(attribute, memType, buffer)
            })
        default:
            throw HDF5Error.wrongDataType(
                file: path, object: object + "@" + name, expected: "a string, integer, float or bool", found: typeName(fileType))
        }
    }

    /// Names of the attributes on `object`, sorted by name.
    public func attributeNames(on object: String = "/") throws -> [String] {
        let target = try openObject(object)
        defer { H5Oclose(target) }
        let count = H5Aget_num_attrs(target)
        guard count >= 0 else { throw failure("list attributes of", object) }
        return try (0..<hsize_t(count)).map { index in
            try readName(object, "list attributes of") { buffer, size in
                H5Aget_name_by_idx(target, ".", H5_INDEX_NAME, H5_ITER_INC, index, buffer, size, tc_h5p_default())
            }
        }
    }

    // MARK: - Helpers

    private func openID() throws -> hid_t {
        guard id >= 0 else { throw HDF5Error.fileClosed(file: path) }
        return id
    }

    private func components(of path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    private func normalized(_ path: String) -> String { "/" + components(of: path).joined(separator: "/") }

    private func failure(_ operation: String, _ object: String) -> HDF5Error {
        .operationFailed(file: path, object: object, operation: operation, reason: HDF5Library.lastErrorMessage())
    }

    private func check(_ status: herr_t, _ operation: String, _ object: String) throws {
        if status < 0 { throw failure(operation, object) }
    }

    private func openObject(_ path: String) throws -> hid_t {
        let file = try openID()
        let object = normalized(path)
        guard try exists(object) else { throw HDF5Error.objectNotFound(file: self.path, object: object) }
        let handle = H5Oopen(file, object, tc_h5p_default())
        guard handle >= 0 else { throw failure("open", object) }
        return handle
    }

    private func openDataset(_ path: String) throws -> hid_t {
        let file = try openID()
        let object = normalized(path)
        guard try exists(object) else { throw HDF5Error.objectNotFound(file: self.path, object: object) }
        guard try kind(of: object) == .dataset else {
            throw HDF5Error.wrongDataType(file: self.path, object: object, expected: "a dataset", found: "a group")
        }
        let dset = H5Dopen2(file, object, tc_h5p_default())
        guard dset >= 0 else { throw failure("open dataset", object) }
        return dset
    }

    /// Creates the dataset (after its parent groups, replacing an old one) and lets `write` fill it.
    /// `dims` nil makes a scalar dataspace.
    private func writeDataset(
        _ path: String, type: hid_t, dims: [hsize_t]?, write: (hid_t, hid_t) -> herr_t
    ) throws {
        let file = try openID()
        let object = normalized(path)
        let parts = components(of: object)
        guard !parts.isEmpty else {
            throw HDF5Error.wrongDataType(file: self.path, object: object, expected: "a dataset path", found: "the root group")
        }
        if parts.count > 1 { try createGroup(parts.dropLast().joined(separator: "/")) }
        if try exists(object), H5Ldelete(file, object, tc_h5p_default()) < 0 { throw failure("replace", object) }
        let space: hid_t
        if let dims, !dims.isEmpty {
            space = dims.withUnsafeBufferPointer { H5Screate_simple(Int32(dims.count), $0.baseAddress, nil) }
        } else {
            space = H5Screate(H5S_SCALAR)
        }
        guard space >= 0 else { throw failure("make dataspace for", object) }
        defer { H5Sclose(space) }
        let dset = H5Dcreate2(file, object, type, space, tc_h5p_default(), tc_h5p_default(), tc_h5p_default())
        guard dset >= 0 else { throw failure("create dataset", object) }
        defer { H5Dclose(dset) }
        try check(write(dset, type), "write", object)
    }

    /// Opens a dataset, checks its element class, and lets `read` fill a value of its dimensions.
    private func readDataset<T>(
        _ path: String, expectedClass: H5T_class_t, expected: String, read: (hid_t, [Int]) -> (T, herr_t)
    ) throws -> T {
        let dset = try openDataset(path)
        defer { H5Dclose(dset) }
        let fileType = H5Dget_type(dset)
        guard fileType >= 0 else { throw failure("read type of", path) }
        defer { H5Tclose(fileType) }
        guard H5Tget_class(fileType) == expectedClass else {
            throw HDF5Error.wrongDataType(file: self.path, object: normalized(path), expected: expected, found: typeName(fileType))
        }
        let space = H5Dget_space(dset)
        guard space >= 0 else { throw failure("read dataspace of", path) }
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0 else { throw failure("read dataspace of", path) }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        if rank > 0, H5Sget_simple_extent_dims(space, &dims, nil) < 0 { throw failure("read dimensions of", path) }
        let count = try elementCount(dims, normalized(path))
        try requireStored(count: count, elementBytes: H5Tget_size(fileType), normalized(path))
        let (value, status) = read(dset, dims.map { Int($0) })
        try check(status, "read", normalized(path))
        return value
    }

    /// A UTF-8 string type: variable-length when `fixedLength` is nil, else null-padded of that size.
    private func stringType(_ fixedLength: Int?, _ object: String) throws -> hid_t {
        let type = H5Tcopy(tc_h5t_c_s1())
        guard type >= 0,
              H5Tset_size(type, fixedLength.map { max($0, 1) } ?? tc_h5t_variable()) >= 0,
              H5Tset_cset(type, H5T_CSET_UTF8) >= 0,
              fixedLength == nil || H5Tset_strpad(type, H5T_STR_NULLPAD) >= 0
        else { throw failure("make string type for", object) }
        return type
    }

    /// h5py's boolean: an enum over int8 with FALSE = 0, TRUE = 1.
    private func boolType(_ object: String) throws -> hid_t {
        let type = H5Tenum_create(HDF5Library.nativeInt8)
        var no: Int8 = 0, yes: Int8 = 1
        guard type >= 0, H5Tenum_insert(type, "FALSE", &no) >= 0, H5Tenum_insert(type, "TRUE", &yes) >= 0 else {
            throw failure("make boolean type for", object)
        }
        return type
    }

    /// Reads one string of `type` (as stored in the file) through `read(memoryType, buffer)`.
    private func readStringValue(type fileType: hid_t, _ object: String, read: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws -> String {
        if H5Tis_variable_str(fileType) > 0 {
            let memType = try stringType(nil, object)
            defer { H5Tclose(memType) }
            var pointer: UnsafeMutablePointer<CChar>?
            try check(read(memType, &pointer), "read string", object)
            defer {
                // HDF5 allocated the string; hand it back through the library's allocator.
                let space = H5Screate(H5S_SCALAR)
                H5Dvlen_reclaim(memType, space, tc_h5p_default(), &pointer)
                H5Sclose(space)
            }
            return pointer.map { String(cString: $0) } ?? ""
        }
        let size = H5Tget_size(fileType)
        guard size > 0 else { throw failure("read string size of", object) }
        try requireStored(count: 1, elementBytes: size, object)
        let memType = try stringType(size, object)
        defer { H5Tclose(memType) }
        var bytes = [UInt8](repeating: 0, count: size + 1)
        try check(bytes.withUnsafeMutableBytes { read(memType, $0.baseAddress!) }, "read string", object)
        let end = bytes.firstIndex(of: 0) ?? size
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    /// Reads a name through HDF5's "call once for the length, again for the text" convention.
    private func readName(_ object: String, _ operation: String, _ call: (UnsafeMutablePointer<CChar>?, Int) -> Int) throws -> String {
        let length = call(nil, 0)
        guard length >= 0 else { throw failure(operation, object) }
        var buffer = [CChar](repeating: 0, count: length + 1)
        guard call(&buffer, length + 1) >= 0 else { throw failure(operation, object) }
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func typeName(_ type: hid_t) -> String {
        switch H5Tget_class(type) {
        case H5T_INTEGER: return "integers"
        case H5T_FLOAT: return "floating-point numbers"
        case H5T_STRING: return "strings"
        case H5T_ENUM: return "an enum"
        case H5T_COMPOUND: return "compound records"
        default: return "another data type"
        }
    }
}

/// Process-wide HDF5 set-up and error-stack reading.
enum HDF5Library {
    private static let initialised: Bool = {
        // HDF5's exit handler closes files left open; after a write failed for lack of space
        // it dereferences freed state and crashes the process (seen on ENOSPC). Every file
        // this project writes is closed (or abandoned) explicitly, so the handler is not needed.
        tc_h5_prepare()
        return true
    }()

    /// Initialises the library once and silences its automatic error printing.
    static func prepare() { _ = initialised }

    /// `H5T_NATIVE_INT8` is a macro over a global that is valid after `H5open()`.
    static var nativeInt8: hid_t {
        prepare()
        return H5T_NATIVE_INT8_g
    }

    /// The most specific message on HDF5's error stack (e.g. "truncated file: eof = 800, ..."),
    /// or a generic note when the stack is empty.
    static func lastErrorMessage() -> String {
        var messages: [String] = []
        let status = withUnsafeMutablePointer(to: &messages) { pointer in
            H5Ewalk2(0 /* H5E_DEFAULT */, H5E_WALK_UPWARD, { _, error, context in
                guard let error, let context, let description = error.pointee.desc else { return 0 }
                context.assumingMemoryBound(to: [String].self).pointee.append(String(cString: description))
                return 0
            }, pointer)
        }
        _ = status
        guard let message = messages.first(where: { !$0.isEmpty }) else { return "HDF5 reported a failure without a message" }
        return condensed(message)
    }

    /// HDF5's file-driver messages run to several lines of time, buffer and offset; what the
    /// user needs is the system's reason ("No space left on device").
    static func condensed(_ message: String) -> String {
        guard let start = message.range(of: "error message = '"),
              let end = message[start.upperBound...].firstIndex(of: "'") else { return ErrorText.bounded(message, limit: 400) }
        let head = message.prefix { $0 != ":" && $0 != "\n" }
        return "\(head): \(message[start.upperBound..<end])"
    }
}

/// Checks the global heap collections of a file before libhdf5 reads them.
///
/// Variable-length strings (the checkpoint's config and its string attributes) live in
/// global heap collections ("GCOL"). libhdf5 1.10 walks a collection's objects with
/// `p = begin + size` and no overflow check, so one object with a huge size wraps the pointer
/// and the walk never ends (found by the `checkpoint` fuzz target). This walks every collection
/// the same way, with the checks, and refuses the file instead.
enum HDF5GlobalHeapCheck {
    static func validate(path: String) throws {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { return }
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard let bytes = raw.bindMemory(to: UInt8.self).baseAddress else { return }
            let count = raw.count
            func u64(_ at: Int) -> UInt64 {
                var v: UInt64 = 0
                for i in 0..<8 { v |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
                return v
            }
            func damaged(_ at: Int, _ reason: String) -> HDF5Error {
                .implausibleSize(file: path, object: "global heap collection at byte \(at)", reason: reason)
            }
            var start = 0
            while start + 16 <= count {
                // "GCOL", version 1, three reserved zero bytes, then the collection size.
                guard bytes[start] == 0x47, bytes[start + 1] == 0x43, bytes[start + 2] == 0x4F, bytes[start + 3] == 0x4C,
                      bytes[start + 4] == 1, bytes[start + 5] == 0, bytes[start + 6] == 0, bytes[start + 7] == 0 else {
                    start += 1
                    continue
                }
                let size = u64(start + 8)
                guard size >= 16, size <= UInt64(count - start) else {
                    throw damaged(start, "declares \(size) bytes, more than the file holds after it")
                }
                let end = start + Int(size)
                var p = start + 16
                // Objects: index (2), reference count (2), reserved (4), size (8), data padded to 8.
                while p + 16 <= end {
                    let index = UInt16(bytes[p]) | UInt16(bytes[p + 1]) << 8
                    let objectSize = u64(p + 8)
                    let padded = objectSize > UInt64(Int.max - 7) ? UInt64.max : (objectSize + 7) & ~7
                    // The free-space object (index 0) counts its own header in its size; libhdf5
                    // steps by that size too, so a size under 16 would never move on.
                    let need = index == 0 ? objectSize : (padded == .max ? .max : padded &+ 16)
                    guard need >= 16, need <= UInt64(end - p) else {
                        throw damaged(start, "holds an object (index \(index)) of \(objectSize) bytes that does not fit the collection")
                    }
                    p += Int(need)
                }
                start = end
            }
        }
    }
}

