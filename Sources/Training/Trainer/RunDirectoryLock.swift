import Foundation
import ModelFormats

/// An exclusive claim on a run directory for the life of one process: `finetune`, `resume`
/// and `eval` hold it while they write there, so a second writer is refused instead of
/// interleaving metrics and racing on checkpoints.
///
/// The claim is a `flock` on the directory's `.lock` file. The kernel drops it when the holder
/// exits in any way (kill -9 included), so a lock file left by a dead process never blocks;
/// the file's text (PID and command) only names the holder in the refusal. The descriptor is
/// close-on-exec, so child processes (the checkpoint reader) do not keep the claim alive.
///
/// Usage: `let lock = try RunDirectoryLock(directory: "checkpoints/medical", holder: "resume")`
public final class RunDirectoryLock {
    /// The lock file's name inside the run directory.
    public static let fileName = ".lock"

    /// Another live process holds the directory.
    public struct Busy: Error, CustomStringConvertible, Equatable {
        /// The run directory asked for.
        public var directory: String
        /// What the lock file says about its holder ("PID 1234 (thoughtcrime resume)"), if readable.
        public var holder: String
        public var description: String {
            "\(directory) is in use by \(holder); wait for it to finish or stop it, then try again"
        }
    }

    /// The claimed directory.
    public let directory: String
    private let descriptor: Int32

    /// Claims `directory` (which must exist) or throws `Busy` naming the holder; other failures
    /// (a read-only directory) throw `TrainingError.io`.
    public init(directory: String, holder: String) throws {
        self.directory = directory
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o644)
        guard fd >= 0 else {
            throw TrainingError.io(path: path, reason: "cannot open the run directory's lock file: \(String(cString: strerror(errno)))")
        }
        var locked = flock(fd, LOCK_EX | LOCK_NB)
        while locked != 0 && errno == EINTR { locked = flock(fd, LOCK_EX | LOCK_NB) }
        if locked != 0 {
            let code = errno
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            guard code == EWOULDBLOCK else {
                throw TrainingError.io(path: path, reason: "cannot lock the run directory: \(String(cString: strerror(code)))")
            }
            let text = n > 0 ? String(decoding: buffer[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
            throw Busy(directory: directory, holder: text.isEmpty ? "another process" : ErrorText.bounded(text, limit: 120))
        }
        descriptor = fd
        let text = "PID \(getpid()) (thoughtcrime \(holder))\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit { close(descriptor) }
}
