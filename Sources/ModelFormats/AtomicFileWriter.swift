#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file through a temporary sibling that is renamed over the destination only after
/// everything is written and synced, so readers never see a half-written model or checkpoint.
struct AtomicFileWriter {
    let destination: String
    private let temporary: String
    private let handle: UnsafeMutablePointer<FILE>
    private let failure: (String) -> Error

    init(destination: String, failure: @escaping (String) -> Error) throws {
        self.destination = destination
        self.failure = failure
        temporary = destination + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard let handle = fopen(temporary, "wb") else {
            throw failure("cannot create \(temporary): " + String(cString: strerror(errno)))
        }
        self.handle = handle
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        guard fwrite(base, 1, bytes.count, handle) == bytes.count else {
            throw failure("write failed: " + String(cString: strerror(errno)))
        }
    }

    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    func writeZeros(_ count: Int) throws {
        if count > 0 { try write([UInt8](repeating: 0, count: count)) }
    }

    /// Flushes, syncs and renames into place.
    func commit() throws {
        guard fflush(handle) == 0, fsync(fileno(handle)) == 0 else {
            let reason = String(cString: strerror(errno))
            abandon()
            throw failure("flush failed: " + reason)
        }
        fclose(handle)
        guard rename(temporary, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw failure("rename failed: " + reason)
        }
    }

    /// Closes and deletes the temporary file (after an error).
    func abandon() {
        fclose(handle)
        unlink(temporary)
    }
}
