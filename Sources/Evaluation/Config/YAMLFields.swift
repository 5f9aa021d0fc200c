import Foundation
import Yams

/// Reads a YAML mapping strictly: typed getters that name the key path on a wrong type, and a
/// final check that rejects keys nobody asked for, suggesting the nearest known one.
struct YAMLFields {
    let file: String
    let path: String
    let map: [String: Node]
    private(set) var known: [String] = []

    init(_ node: Node?, file: String, path: String) throws {
        self.file = file
        self.path = path
        guard let node else { map = [:]; return }
        guard let m = node.mapping else { throw EvaluationError.invalidSuite(file: file, message: "\(path.isEmpty ? "the document" : path) must be a mapping") }
        var out: [String: Node] = [:]
        for (k, v) in m {
            guard let key = k.string else { throw EvaluationError.invalidSuite(file: file, message: "\(path): non-string key") }
            out[key] = v
        }
        map = out
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func fail(_ key: String, _ message: String) -> EvaluationError {
        let line = map[key]?.mark.map { ":\($0.line)" } ?? ""
        return .invalidSuite(file: file + line, message: "\(keyPath(key)): \(message)")
    }

    mutating func node(_ key: String) -> Node? {
        known.append(key)
        if case .scalar(let s)? = map[key], s.string == "null" || s.string == "~" || s.string == "" { return nil }
        return map[key]
    }

    mutating func string(_ key: String, default value: String? = nil) throws -> String? {
        guard let n = node(key) else { return value }
        guard let s = n.string else { throw fail(key, "expected a string") }
        return s
    }

    mutating func requiredString(_ key: String) throws -> String {
        guard let s = try string(key) else { throw EvaluationError.invalidSuite(file: file, message: "\(keyPath(key)) is required") }
        return s
    }

    mutating func int(_ key: String, default value: Int, range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        guard let n = node(key) else { return value }
        guard let i = n.int else { throw fail(key, "expected an integer") }
        guard range.contains(i) else { throw fail(key, "\(i) is outside \(range.lowerBound)...\(range.upperBound)") }
        return i
    }

    mutating func optionalInt(_ key: String, range: ClosedRange<Int> = 1...Int.max) throws -> Int? {
        guard node(key) != nil else { return nil }
        return try int(key, default: 0, range: range)
    }

    mutating func double(_ key: String, default value: Double, range: ClosedRange<Double> = -Double.infinity...Double.infinity) throws -> Double {
        guard let n = node(key) else { return value }
        guard let d = n.float ?? n.int.map(Double.init) else { throw fail(key, "expected a number") }
        guard range.contains(d) else { throw fail(key, "\(d) is outside \(range.lowerBound)...\(range.upperBound)") }
        return d
    }

    mutating func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let n = node(key) else { return value }
        guard let b = n.bool else { throw fail(key, "expected true or false") }
        return b
    }

    mutating func strings(_ key: String, default value: [String] = []) throws -> [String] {
        guard let n = node(key) else { return value }
        if let s = n.string { return [s] }
        guard let seq = n.sequence else { throw fail(key, "expected a list of strings") }
        return try seq.map { guard let s = $0.string else { throw fail(key, "expected a list of strings") }; return s }
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, default value: T) throws -> T where T.RawValue == String {
        guard let s = try string(key) else { return value }
        guard let v = T(rawValue: s) else { throw fail(key, "'\(s)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))") }
        return v
    }

    mutating func section(_ key: String) throws -> YAMLFields {
        try YAMLFields(node(key), file: file, path: keyPath(key))
    }

    /// Fails on any key that was not read, naming the closest known key.
    func rejectUnknownKeys() throws {
        for key in map.keys.sorted() where !known.contains(key) {
            let nearest = known.min { editDistance($0, key) < editDistance($1, key) }
            let hint = nearest.map { editDistance($0, key) <= max(2, key.count / 3) ? "; did you mean '\(keyPath($0))'?" : "" } ?? ""
            throw fail(key, "unknown key\(hint) (known: \(known.sorted().joined(separator: ", ")))")
        }
    }
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in 1...max(b.count, 1) where !b.isEmpty {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return a.isEmpty ? b.count : row[b.count]
}
