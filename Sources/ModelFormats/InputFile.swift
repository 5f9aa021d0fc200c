#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Reads the files a user names (models, data, configs, suites, adapters, checkpoints) only
/// when they are regular files.
///
/// `open()` on a FIFO blocks until a writer appears, possibly for ever, and a character device
/// such as /dev/zero never ends. So the kind of file is checked before it can block: `stat` for
/// readers that open by path (HDF5), and `open` with `O_NONBLOCK` then `fstat` for the rest
/// (`O_NONBLOCK` returns at once for a FIFO and changes nothing for a regular file).
///
/// Usage: `let data = try InputFile.read("data/medical/train.jsonl")`
public enum InputFile {
    /// Why a named input was not read. `reason` is short and names no path: callers put it in
    /// their own error beside the file name.
    public struct Problem: Error, CustomStringConvertible, Equatable {
        /// The input named.
        public var path: String
        /// Why it was not read ("no such file", "not a regular file (a FIFO)").
        public var reason: String
        public var description: String { "\(path): \(reason)" }

        /// Usage: `InputFile.Problem(path: "x.yaml", reason: "no such file")`
        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }
    }

    /// Throws unless `path` names a regular file (symbolic links followed). Opens nothing.
    public static func requireRegular(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { throw Problem(path: path, reason: errnoReason(errno)) }
        if let kind = irregularKind(info.st_mode) { throw Problem(path: path, reason: "not a regular file (\(kind))") }
    }

    /// Whether `path` names a regular file; no error for a missing one.
    public static func isRegular(_ path: String) -> Bool { (try? requireRegular(path)) != nil }

    /// The whole content of the regular file at `path`. At most `limit` bytes are accepted.
    public static func read(_ path: String, limit: Int = Int.max) throws -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw Problem(path: path, reason: errnoReason(errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Problem(path: path, reason: errnoReason(errno)) }
        if let kind = irregularKind(info.st_mode) { throw Problem(path: path, reason: "not a regular file (\(kind))") }
        let size = Int(info.st_size)
        guard size <= limit else { throw Problem(path: path, reason: "\(size) bytes; at most \(limit) are accepted") }
        var data = Data(count: size)
        var filled = 0
        while filled < size {
            let n = data.withUnsafeMutableBytes { buffer in
                Glibc.read(fd, buffer.baseAddress! + filled, size - filled)
            }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw Problem(path: path, reason: errnoReason(errno))
            }
            if n == 0 { break }  // shrank while read: keep what is there
            filled += n
        }
        if filled < size { data.removeSubrange(filled..<size) }
        return data
    }

    /// `read` decoded as UTF-8.
    public static func readText(_ path: String, limit: Int = Int.max) throws -> String {
        let data = try read(path, limit: limit)
        guard let text = String(data: data, encoding: .utf8) else { throw Problem(path: path, reason: "not UTF-8 text") }
        return text
    }

    static func irregularKind(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "an unknown kind"
        }
    }

    static func errnoReason(_ code: Int32) -> String {
        switch code {
        case ENOENT: return "no such file"
        case EACCES: return "permission denied"
        default: return String(cString: strerror(code))
        }
    }
}
