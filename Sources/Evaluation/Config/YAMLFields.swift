import Foundation
import Yams
import Training

/// The problems found while reading one config, kept so that all of them are reported at once.
final class ConfigProblems {
    private(set) var messages: [EvaluationError] = []
    func record(_ error: EvaluationError) { messages.append(error) }
    var isEmpty: Bool { messages.isEmpty }

    /// Throws every recorded problem: one as it is, several as one error listing each.
    func throwIfAny(file: String) throws {
        guard let first = messages.first else { return }
        if messages.count == 1 { throw first }
        throw EvaluationError.invalidConfig(file: file, problems: messages.map(\.description))
    }
}

/// Reads a YAML mapping strictly: typed getters that name the key path on a wrong type, and a
/// final check that rejects keys nobody asked for, suggesting the nearest known one
/// (`KeySuggestion`, as finetune configs do). A getter that finds a problem records it in
/// `problems` and returns the default, so that reading goes on and every problem is reported.
struct YAMLFields {
    let file: String
    let path: String
    let map: [String: Node]
    let problems: ConfigProblems
    private(set) var known: [String] = []

    init(_ node: Node?, file: String, path: String, problems: ConfigProblems) {
        self.file = file
        self.path = path
        self.problems = problems
        guard let node else { map = [:]; return }
        guard let m = node.mapping else {
            problems.record(.invalidSuite(file: file, message: "\(path.isEmpty ? "the document" : path) must be a mapping"))
            map = [:]
            return
        }
        var out: [String: Node] = [:]
        for (k, v) in m {
            guard let key = k.string else {
                problems.record(.invalidSuite(file: file, message: "\(path): non-string key"))
                continue
            }
            out[key] = v
        }
        map = out
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func fail(_ key: String, _ message: String) -> EvaluationError {
        let line = map[key]?.mark.map { ":\($0.line)" } ?? ""
        return .invalidSuite(file: file + line, message: "\(keyPath(key)): \(message)")
    }

    /// Records a problem with `key`.
    func report(_ key: String, _ message: String) { problems.record(fail(key, message)) }

    mutating func node(_ key: String) -> Node? {
        known.append(key)
        if case .scalar(let s)? = map[key], s.string == "null" || s.string == "~" || s.string == "" { return nil }
        return map[key]
    }

    mutating func string(_ key: String, default value: String? = nil) -> String? {
        guard let n = node(key) else { return value }
        guard let s = n.string else { report(key, "expected a string"); return value }
        return s
    }

    mutating func requiredString(_ key: String) -> String {
        guard let s = string(key) else {
            if map[key] == nil || node(key) == nil { problems.record(.invalidSuite(file: file, message: "\(keyPath(key)) is required")) }
            return ""
        }
        return s
    }

    mutating func int(_ key: String, default value: Int, range: ClosedRange<Int> = Int.min...Int.max) -> Int {
        guard let n = node(key) else { return value }
        guard let i = n.int else { report(key, "expected an integer"); return value }
        guard range.contains(i) else { report(key, "\(i) is outside \(range.lowerBound)...\(range.upperBound)"); return value }
        return i
    }

    mutating func optionalInt(_ key: String, range: ClosedRange<Int> = 1...Int.max) -> Int? {
        guard let n = node(key) else { return nil }
        guard let i = n.int else { report(key, "expected an integer"); return nil }
        guard range.contains(i) else { report(key, "\(i) is outside \(range.lowerBound)...\(range.upperBound)"); return nil }
        return i
    }

    mutating func double(_ key: String, default value: Double, range: ClosedRange<Double> = -Double.infinity...Double.infinity) -> Double {
        guard let n = node(key) else { return value }
        guard let d = n.float ?? n.int.map(Double.init) else { report(key, "expected a number"); return value }
        guard range.contains(d) else { report(key, "\(d) is outside \(range.lowerBound)...\(range.upperBound)"); return value }
        return d
    }

    mutating func bool(_ key: String, default value: Bool) -> Bool {
        guard let n = node(key) else { return value }
        guard let b = n.bool else { report(key, "expected true or false"); return value }
        return b
    }

    mutating func strings(_ key: String, default value: [String] = []) -> [String] {
        guard let n = node(key) else { return value }
        if let s = n.string { return [s] }
        guard let seq = n.sequence, seq.allSatisfy({ $0.string != nil }) else { report(key, "expected a list of strings"); return value }
        return seq.compactMap(\.string)
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, default value: T) -> T where T.RawValue == String {
        guard let s = string(key) else { return value }
        guard let v = T(rawValue: s) else {
            report(key, "'\(s)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            return value
        }
        return v
    }

    mutating func section(_ key: String) -> YAMLFields {
        YAMLFields(node(key), file: file, path: keyPath(key), problems: problems)
    }

    /// Records every key that was not read, naming the closest known key.
    func rejectUnknownKeys() {
        for key in map.keys.sorted() where !known.contains(key) {
            let hint = KeySuggestion.nearest(to: key, among: known).map { "; did you mean '\(keyPath($0))'?" } ?? ""
            report(key, "unknown key\(hint) (known: \(known.sorted().joined(separator: ", ")))")
        }
    }
}
