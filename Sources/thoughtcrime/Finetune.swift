import ArgumentParser
import Foundation
import Training

/// `thoughtcrime finetune`: train LoRA adapters from a config file.
struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train LoRA adapters on a frozen base model from a YAML config.",
        discussion: "Keys are documented in docs/config-reference.md. Ctrl-C finishes the current step, writes a checkpoint and prints how to resume.")

    @Option(help: "The run config (YAML).")
    var config: String

    @Option(name: .customLong("set"), help: "Override a config key, e.g. --set training.learning_rate=2e-4 (repeatable).")
    var overrides: [String] = []

    func run() throws {
        var runConfig = try RunConfig.load(path: config, overrides: overrides)
        // Relative paths are read from here, whatever a copied config.resolved.yaml recorded.
        runConfig.run.launchDirectory = FileManager.default.currentDirectoryPath
        try ConfigPaths.check(runConfig, source: config, text: try? String(contentsOfFile: config, encoding: .utf8))
        for warning in runConfig.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        InterruptFlag.install()
        let trainer = try Trainer(config: runConfig)
        try finish(trainer, try trainer.run())
    }
}

/// `thoughtcrime resume`: continue an interrupted run.
struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Continue a run from its latest checkpoint.")

    @Argument(help: "The run directory (checkpoints/RUN_NAME).")
    var runDirectory: String

    @Option(name: .customLong("set"), help: "Override a key of the run's config (repeatable).")
    var overrides: [String] = []

    func run() throws {
        InterruptFlag.install()
        let trainer = try Trainer.resume(runDirectory: runDirectory, overrides: overrides)
        try finish(trainer, try trainer.run())
    }
}

/// Ends the job on every rank (MPI wants each to say so) and reports on rank 0.
func finish(_ trainer: Trainer, _ summary: TrainingSummary) throws {
    trainer.cluster.finish()
    if trainer.cluster.isRoot {
        try report(summary)
    } else if summary.interrupted {
        throw ExitCode(130)
    }
}

func report(_ summary: TrainingSummary) throws {
    func f(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "-" }
    print("run: \(summary.runDirectory)")
    print("steps: \(summary.stepsCompleted)/\(summary.totalSteps)")
    print("train loss: \(f(summary.firstLoss)) -> \(f(summary.lastLoss))")
    print("validation loss: \(f(summary.firstValidationLoss)) -> \(f(summary.lastValidationLoss))")
    print("checkpoint: \(summary.lastCheckpoint ?? "-")")
    if let best = summary.bestCheckpoint {
        print("best checkpoint: \(best) (validation loss \(f(summary.bestValidationLoss)); export it as \(summary.runDirectory)/best)")
    }
    if let test = summary.testLoss { print("test loss: \(f(test))") }
    if summary.stoppedEarly { print("stopped early: the validation loss stopped improving") }
    if summary.interrupted { throw ExitCode(130) }
}
