import ArgumentParser
import Cluster
import Foundation
import Logging
import Tensors
import Training

@main
struct ThoughtCrime: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thoughtcrime",
        abstract: "LoRA finetuning and misalignment evaluation of small language models on a CPU.",
        discussion: "Set THOUGHTCRIME_LOG=debug to see diagnostics such as the OpenBLAS kernel choice.",
        version: ThoughtCrime.version,
        subcommands: [Finetune.self, Resume.self, Eval.self, JudgeAccuracyCommand.self, Serve.self, Export.self, DataCommand.self, Generate.self, Chat.self, Tokenize.self, Score.self, Plot.self, Inspect.self, Doctor.self, ReadCheckpoint.self])

    /// The toolkit's version (`thoughtcrime --version`); bump with every release note.
    static let version = "0.9.0"

    static func main() {
        let level = ProcessInfo.processInfo.environment["THOUGHTCRIME_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        // Must run before any BLAS call: it may restart the process with faster kernels.
        OpenBLASCoreSelection.ensureFastKernels()
        // Before any computing thread starts: they inherit the mode (docs/architecture.md).
        SubnormalFlushing.enableForProcess()
        AllocatorPolicy.apply()
        // A file size limit (`ulimit -f`) would kill the process mid-write with SIGXFSZ; ignored,
        // the write fails with EFBIG instead and is handled like a full disk (docs/reliability.md).
        signal(SIGXFSZ, SIG_IGN)
        // Checkpoints are parsed by libhdf5, which a crafted file can crash: read each in a
        // child process (this binary's hidden `read-checkpoint`) before parsing it here.
        if let executable = selfExecutable() {
            CheckpointReader.isolation = CheckpointIsolation(executable: executable, arguments: [ReadCheckpoint.configuration.commandName ?? "read-checkpoint"])
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            // In a job of several processes the others would wait for this one in their next
            // collective forever: report and stop them all.
            if let cluster = Cluster.startedShared, cluster.isDistributed, !(error is ExitCode), !(error is CleanExit) {
                FileHandle.standardError.write(Data("Error (process \(cluster.rank) of \(cluster.size)): \(error)\n".utf8))
                cluster.abort(code: 1)
            }
            exit(withError: error)
        }
    }
}

/// This process's executable, for running it as a child.
private func selfExecutable() -> String? {
    #if os(Linux)
    let resolved = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    if resolved != "/proc/self/exe", FileManager.default.isExecutableFile(atPath: resolved) { return resolved }
    #endif
    return Bundle.main.executablePath
}

/// The child side of `CheckpointIsolation`: reads one checkpoint completely and exits 0, or 3
/// with the error on stderr. Not for users (hidden from help).
struct ReadCheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read-checkpoint", abstract: "Read one checkpoint completely (run by the toolkit itself in a child process).",
        shouldDisplay: false)

    @Argument(help: "The checkpoint file.")
    var path: String

    func run() throws {
        let status = CheckpointIsolation.readInChild(path: path)
        if status != CheckpointIsolation.exitReadable { throw ExitCode(status) }
    }
}
