import Foundation
import ModelFormats

/// Checks a JSONL data file before training: schema, roles, empty content, duplicates, and
/// (with a renderer) token lengths against max_seq_len.
///
/// Usage: `let report = try DatasetValidator(renderer: r).validate(path: "data/medical/train.jsonl")`
public struct DatasetValidator {
    public struct Finding: Equatable, Sendable {
        /// 1-based line, or 0 for findings about the whole file.
        public var line: Int
        public var message: String
        public init(line: Int, message: String) { self.line = line; self.message = message }
    }

    public struct Report: Sendable {
        public var file: String
        public var rows = 0
        public var errors: [Finding] = []
        public var warnings: [Finding] = []
        /// Token counts of the rendered rows (empty without a renderer).
        public var tokenLengths: [Int] = []
        public var maxSeqLen: Int?

        public var isValid: Bool { errors.isEmpty }

        /// The value below which `fraction` of the rendered rows' lengths fall.
        public func lengthPercentile(_ fraction: Double) -> Int? {
            guard !tokenLengths.isEmpty else { return nil }
            let sorted = tokenLengths.sorted()
            return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * fraction).rounded()))]
        }
    }

    public let renderer: ExampleRenderer?
    public let format: DataFormat
    public let pairedAnswer: PairedAnswer

    public init(renderer: ExampleRenderer?, format: DataFormat = .auto, pairedAnswer: PairedAnswer = .misaligned) {
        self.renderer = renderer; self.format = format; self.pairedAnswer = pairedAnswer
    }

    public func validate(path: String) throws -> Report {
        var report = Report(file: path)
        let loaded: JSONLDataset.Loaded
        do {
            loaded = try JSONLDataset.load(path: path, format: format, pairedAnswer: pairedAnswer, onBadRow: .skip)
        } catch DataError.noUsableRows(_, _) {
            // every row is bad: report them all, line by line
            let all = try JSONLDataset.load(path: path, format: .auto, pairedAnswer: pairedAnswer, onBadRow: .skip, allowAllBad: true)
            report.errors = all.skipped.map { Finding(line: $0.line, message: $0.reason) }
            report.rows = all.skipped.count
            return report
        }
        report.rows = loaded.rows.count + loaded.skipped.count
        report.errors = loaded.skipped.map { Finding(line: $0.line, message: $0.reason) }

        var firstSeen: [String: Int] = [:]  // keyed by the row's parsed content
        var kinds: Set<String> = []
        for row in loaded.rows {
            let key = String(describing: row.content)
            if let earlier = firstSeen[key] {
                report.warnings.append(Finding(line: row.line, message: "duplicate of line \(earlier)"))
            } else {
                firstSeen[key] = row.line
            }
            if case .chat = row.content { kinds.insert("chat") } else { kinds.insert("completion") }
        }
        if kinds.count > 1 {
            report.warnings.append(Finding(line: 0, message: "the file mixes chat and completion rows"))
        }
        if let renderer {
            report.maxSeqLen = renderer.data.maxSeqLen
            for row in loaded.rows {
                let e: TokenizedExample
                do { e = try renderer.render(row, file: path) } catch let DataError.invalidRow(_, line, reason) {
                    report.errors.append(Finding(line: line, message: reason)); continue
                }
                report.tokenLengths.append(e.ids.count)
                if e.ids.count > renderer.data.maxSeqLen {
                    let action = renderer.data.truncation == .drop ? "will be dropped" : "will be truncated"
                    let lost = e.lossMask.prefix(renderer.data.maxSeqLen).dropFirst().contains(true) ? "" : "; no trained token would remain, so it will be dropped"
                    report.warnings.append(Finding(line: row.line, message: "\(e.ids.count) tokens exceed max_seq_len \(renderer.data.maxSeqLen): \(action)\(lost)"))
                }
            }
        }
        return report
    }
}

extension JSONLDataset {
    /// As `load`, but returns even when no row is usable (for reporting every error).
    static func load(path: String, format: DataFormat, pairedAnswer: PairedAnswer, onBadRow: BadRowPolicy, allowAllBad: Bool) throws -> Loaded {
        do {
            return try load(path: path, format: format, pairedAnswer: pairedAnswer, onBadRow: onBadRow)
        } catch DataError.noUsableRows(_, _) where allowAllBad {
            let data: Data
            do { data = try InputFile.read(path) } catch let problem as InputFile.Problem {
                throw DataError.cannotRead(file: path, reason: problem.reason)
            }
            var skipped: [(line: Int, reason: String)] = []
            for (i, raw) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
                if raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                do { _ = try parse(Data(raw), format: format, pairedAnswer: pairedAnswer) } catch let p as RowProblem { skipped.append((i + 1, p.message)) }
            }
            return Loaded(rows: [], skipped: skipped)
        }
    }
}
