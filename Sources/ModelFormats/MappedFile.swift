#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory. The readers parse straight out of the mapping, so
/// opening a 100 MB model costs no copy, and tensor bytes stay valid while the owner lives.
final class MappedFile {
    let path: String
    let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer?

    /// `failure` turns an errno description into the caller's error type.
    init(path: String, failure: (String) -> Error) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // a FIFO must not block: fstat refuses it below
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw failure("not a regular file") }
        let size = Int(info.st_size)
        if size == 0 {
            // mmap rejects empty mappings; an empty buffer lets the parser report truncation.
            mapping = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw failure("mmap failed: " + String(cString: strerror(errno)))
        }
        mapping = base
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let mapping { munmap(mapping, bytes.count) }
    }

    /// Drops the pages read so far from this process's resident set; the mapping stays valid
    /// and later reads fault them back in from the page cache.
    func releaseResidentPages() {
        if let mapping { _ = madvise(mapping, bytes.count, MADV_DONTNEED) }
    }
}

/// Little-endian reads from a byte buffer in which every access is bounds-checked first.
/// `field` is only evaluated when a read fails, so hot loops do not build strings.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    var offset: Int
    /// Builds the error for a read of `needed` bytes at `offset` that does not fit.
    let truncated: (_ field: String, _ offset: Int, _ needed: Int) -> Error

    var remaining: Int { bytes.count - offset }

    mutating func skip(_ count: Int, field: @autoclosure () -> String) throws {
        guard count >= 0, count <= remaining else { throw truncated(field(), offset, count) }
        offset += count
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, field: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        guard size <= remaining else { throw truncated(field(), offset, size) }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += size
        return T(littleEndian: value)
    }

    mutating func readBytes(_ count: Int, field: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else { throw truncated(field(), offset, count) }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        offset += count
        return slice
    }
}
