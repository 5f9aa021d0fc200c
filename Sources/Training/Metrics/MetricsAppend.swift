import Foundation

/// Appends whole lines to a log file, or nothing: a write cut short by a full disk or a file
/// size limit is truncated away, so the file never ends in half a JSON record.
///
/// Usage: `try MetricsAppend.appendLine(data, to: "run/metrics.jsonl")`
enum MetricsAppend {
    enum Failure: Error, Equatable { case write(errno: Int32) }

    static func appendLine(_ line: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0o644)
        guard fd >= 0 else { throw Failure.write(errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Failure.write(errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw Failure.write(errno: EINVAL) }
        let start = info.st_size
        var written = 0
        let failure: Int32? = line.withUnsafeBytes { buffer -> Int32? in
            while written < buffer.count {
                let n = write(fd, buffer.baseAddress! + written, buffer.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if n == 0 { return EIO }
                written += n
            }
            return nil
        }
        if let failure {
            if written > 0 { _ = ftruncate(fd, start) }
            throw Failure.write(errno: failure)
        }
    }

    /// What a user can act on, for the errno of a failed append.
    static func describe(_ code: Int32) -> String {
        switch code {
        case ENOSPC: return "no space left on the device"
        case EFBIG: return "the file size limit is reached (EFBIG: `ulimit -f` or the file system's maximum)"
        case EDQUOT: return "the disk quota is exceeded"
        case EINVAL: return "not a regular file"
        default: return String(cString: strerror(code))
        }
    }
}
