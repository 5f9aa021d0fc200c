import ArgumentParser
import Foundation
import Training

/// `thoughtcrime plot`: loss curves of runs, for a browser or a spreadsheet.
struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw training loss, validation loss and learning rate of one or several runs (HTML with SVG), and export them as CSV.",
        discussion: """
        Every finished or interrupted run also gets RUN/curves.html written beside its metrics.jsonl, and (unless \
        logging.tensorboard is false) TensorBoard event files, so `tensorboard --logdir checkpoints` shows every run. \
        --tensorboard DIR writes them for runs made before that, or to gather runs in one place.
        """)

    @Argument(help: "Run directories (each with a metrics.jsonl).")
    var runs: [String]

    @Option(help: "The HTML page to write (default: RUN/curves.html for one run, curves.html for several).")
    var out: String?

    @Option(help: "Also write every metrics line of every run to this CSV file.")
    var csv: String?

    @Option(help: ArgumentHelp("Also write each run's metrics as TensorBoard event files under DIR/RUN (view with `tensorboard --logdir DIR`).", valueName: "DIR"))
    var tensorboard: String?

    @Option(help: "Weight of the newest step in the smoothed training loss, in (0, 1]; 1 = no smoothing.")
    var smoothing = 0.6

    func validate() throws {
        guard smoothing > 0, smoothing <= 1 else { throw ValidationError("--smoothing must be in (0, 1], got \(smoothing)") }
    }

    func run() throws {
        let curves = LossCurves(runs: try runs.map { try MetricsLog(runDirectory: $0) }, smoothing: smoothing)
        let page = out ?? (runs.count == 1 ? (runs[0] as NSString).appendingPathComponent("curves.html") : "curves.html")
        try write(curves.html(title: "Loss curves: " + curves.runs.map(\.name).joined(separator: ", ")), to: page)
        print("wrote \(page)")
        if let csv {
            try write(curves.csv(), to: csv)
            print("wrote \(csv)")
        }
        if let tensorboard {
            for file in try TensorBoardEventFile.export(curves.runs, to: tensorboard) { print("wrote \(file)") }
        }
    }

    private func write(_ text: String, to path: String) throws {
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw TrainingError.io(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
