import CKernels
import Foundation
import ModelFormats

/// Reads a checkpoint in a child process before this process parses it.
///
/// Checkpoints are parsed by the HDF5 C library, which trusts a file's internal pointers: a
/// crafted or badly damaged file can make it crash (a SIGSEGV inside `H5F__accum_read` was
/// found by fuzzing, docs/reliability.md) or loop. No check in Swift can cover all of its code,
/// so the toolkit first lets a child process run the complete read. Only when the child
/// finishes (reading the file, or rejecting it with a typed error) does this process parse it;
/// a child that crashes, is killed or runs past `timeout` makes the file a damaged checkpoint,
/// and `CheckpointReader.readLatest` falls back to an older one.
///
/// The child is given the checkpoint path as its last argument. It must call
/// `CheckpointIsolation.readInChild(path:)` and exit with its result.
///
/// Usage (the CLI's start):
/// ```
/// CheckpointReader.isolation = CheckpointIsolation(executable: selfPath, arguments: ["_read-checkpoint"])
/// ```
public struct CheckpointIsolation: Sendable {
    /// The program run as the child, and the arguments before the checkpoint path.
    public var executable: String
    public var arguments: [String]
    /// Seconds the child may take. Reading a checkpoint of the default model takes well under one.
    public var timeout: TimeInterval

    /// Exit status of a child that read the file completely.
    public static let exitReadable: Int32 = 0
    /// Exit status of a child that rejected the file with a typed error (the parent then reads it
    /// itself to report the same error).
    public static let exitRejected: Int32 = 3
    /// Exit status of a child whose parent had already exited.
    static let exitParentGone: Int32 = 4
    /// The environment variable that tells the child its parent's PID.
    static let parentVariable = "THOUGHTCRIME_READER_PARENT"

    public init(executable: String, arguments: [String] = [], timeout: TimeInterval = 120) {
        self.executable = executable
        self.arguments = arguments
        self.timeout = timeout
    }

    /// The child's side: reads the checkpoint in this process, writes a rejection to stderr,
    /// and returns the exit status the parent expects.
    public static func readInChild(path: String) -> Int32 {
        // A reader blocked on a hostile file must not outlive the process that asked for it.
        if let parent = ProcessInfo.processInfo.environment[parentVariable].flatMap(Int32.init),
           tc_die_with_parent(parent) == 1 {
            return exitParentGone
        }
        FaultInjection.point("checkpoint-child-reading")
        do {
            _ = try CheckpointReader.readInThisProcess(path)
            return exitReadable
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            return exitRejected
        }
    }

    /// Runs the child on `path`. Returns when the child finished its read (with or without a
    /// typed rejection); throws `CheckpointError.unsafeToRead` when it crashed, hung or failed.
    public func check(_ path: String) throws {
        let errorLog = FileManager.default.temporaryDirectory
            .appendingPathComponent("thoughtcrime-checkpoint-read-\(getpid())-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: errorLog) }

        let outcome: ChildOutcome
        do {
            outcome = try ChildProcess.run(
                executable: executable, arguments: arguments + [path], errorLog: errorLog, timeout: timeout,
                // A crash is an expected outcome here: Swift's backtracer would only slow it down.
                environment: ["SWIFT_BACKTRACE": "enable=no", Self.parentVariable: String(getpid())])
        } catch let ChildProcess.Failure.cannotStart(code) {
            throw CheckpointError.unsafeToRead(
                file: path, reason: "the checkpoint reader process \(executable) could not be started (\(String(cString: strerror(code))))")
        }
        let said = ErrorText.bounded(
            (try? String(contentsOfFile: errorLog, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
        switch outcome {
        case .exited(Self.exitReadable), .exited(Self.exitRejected):
            return
        case let .exited(status):
            throw CheckpointError.unsafeToRead(
                file: path, reason: "the separate process reading it failed with exit status \(status)\(said.isEmpty ? "" : ": \(said)")")
        case let .signalled(signal) where [SIGTERM, SIGINT, SIGHUP].contains(signal):
            // Sent from outside (a user, a supervisor): not the file's doing, so no fallback.
            throw CheckpointError.readerStopped(file: path, signal: Self.signalName(signal))
        case .signalled(SIGKILL):
            // The OOM killer, or a user: a file that makes libhdf5 allocate without end is
            // treated as damaged, as a crash would be.
            throw CheckpointError.unsafeToRead(
                file: path, reason: "the separate process reading it was killed (SIGKILL: out of memory, or from outside)")
        case let .signalled(signal):
            throw CheckpointError.unsafeToRead(
                file: path, reason: "reading it crashed the HDF5 library (\(Self.signalName(signal)) in a separate process)")
        case .timedOut:
            throw CheckpointError.unsafeToRead(
                file: path, reason: "reading it did not finish within \(String(format: "%g", timeout)) s (the HDF5 library may loop on it)")
        }
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGSEGV: return "SIGSEGV"
        case SIGBUS: return "SIGBUS"
        case SIGABRT: return "SIGABRT"
        case SIGILL: return "SIGILL"
        case SIGFPE: return "SIGFPE"
        case SIGKILL: return "SIGKILL"
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGHUP: return "SIGHUP"
        case SIGQUIT: return "SIGQUIT"
        case SIGTRAP: return "SIGTRAP"
        default: return "signal \(signal)"
        }
    }
}

enum ChildOutcome: Equatable {
    case exited(Int32)
    case signalled(Int32)
    case timedOut
}

/// One child process in its own process group, with stdin and stdout on /dev/null and stderr
/// in a file. On timeout the whole group is killed, so a grandchild cannot keep it alive.
enum ChildProcess {
    enum Failure: Error { case cannotStart(Int32) }

    static func run(executable: String, arguments: [String], errorLog: String, timeout: TimeInterval,
                    environment extra: [String: String]) throws -> ChildOutcome {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errorLog, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t(), allSignals = sigset_t()
        sigemptyset(&noSignals)
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var environment = ProcessInfo.processInfo.environment
        for (key, value) in extra { environment[key] = value }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }

        var pid = pid_t()
        let code = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard code == 0 else { throw Failure.cannotStart(code) }

        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while true {
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid { break }
            if waited < 0 && errno != EINTR { return .exited(-1) }
            if Date() >= deadline {
                kill(-pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return .timedOut
            }
            usleep(2_000)
        }
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }
}
