import ModelFormats

/// Where a config value came from: a file and line, or a `--set` override.
public struct ConfigLocation: Equatable, Sendable, CustomStringConvertible {
    /// The config file path, or `--set` for command-line overrides.
    public let source: String
    /// 1-based line in `source`, when known.
    public let line: Int?

    public init(source: String, line: Int?) {
        self.source = source
        self.line = line
    }

    public var description: String { line.map { "\(source):\($0)" } ?? source }
}

/// Why a config (finetune or evaluation) was rejected. Every case names the key path and
/// where it came from.
public enum ConfigError: Error, Equatable, CustomStringConvertible {
    case unreadableFile(path: String, reason: String)
    /// Files the config names that do not exist, one message each (with its line and a suggestion).
    case missingFiles([String])
    case invalidYAML(source: String, message: String)
    /// The document (or a section) is not a mapping of keys to values.
    case notAMapping(path: String, location: ConfigLocation)
    /// `known` lists what is valid in the mapping where the key was found (full paths).
    case unknownKey(path: String, location: ConfigLocation, suggestion: String?, known: [String] = [])
    /// A top-level name where only sections are valid (finetune configs).
    case unknownSection(path: String, location: ConfigLocation, suggestion: String?, known: [String] = [])
    case duplicateKey(path: String, location: ConfigLocation)
    case wrongType(path: String, expected: String, found: String, location: ConfigLocation)
    case outOfRange(path: String, value: String, expected: String, location: ConfigLocation)
    case missingRequiredKey(path: String, source: String)
    /// Values that are each valid but do not go together (a judge without its settings).
    case conflict(path: String, message: String, source: String)
    /// A `--set` argument that is not of the form `key.path=value`.
    case malformedOverride(argument: String)
    /// Several problems in one file, reported together so they can be fixed in one go.
    case multiple([ConfigError])

    public var description: String {
        // Keys, values and `--set` arguments come from the user's input and may be huge or
        // hold control characters: each is shown escaped and cut to a readable length.
        func b(_ text: String) -> String { ErrorText.bounded(text, limit: 200) }
        func at(_ location: ConfigLocation) -> String { b(location.description) }
        switch self {
        case let .unreadableFile(path, reason):
            return "\(b(path)): cannot read config: \(reason)"
        case let .missingFiles(messages):
            return messages.joined(separator: "\n")
        case let .invalidYAML(source, message):
            return "\(b(source)): not valid YAML: \(message)"
        case let .notAMapping(path, location):
            let what = path.isEmpty ? "the config" : "'\(b(path))'"
            return "\(at(location)): \(what) must be a mapping of keys to values"
        case let .unknownKey(path, location, suggestion, known):
            let hint = suggestion.map { "; did you mean '\($0)'?" }
                ?? (known.isEmpty ? "" : "; valid here: \(known.joined(separator: ", "))")
            return "\(at(location)): unknown key '\(b(path))'\(hint)"
        case let .unknownSection(path, location, suggestion, known):
            let hint = suggestion.map { "; did you mean '\($0)'?" } ?? "; valid sections: \(known.joined(separator: ", "))"
            return "\(at(location)): unknown section '\(b(path))'\(hint)"
        case let .duplicateKey(path, location):
            return "\(at(location)): key '\(b(path))' appears twice"
        case let .wrongType(path, expected, found, location):
            return "\(at(location)): '\(b(path))' must be \(expected), got \(b(found))"
        case let .outOfRange(path, value, expected, location):
            return "\(at(location)): '\(b(path))' is \(b(value)), but must be \(expected)"
        case let .missingRequiredKey(path, source):
            return "\(b(source)): required key '\(path)' is missing"
        case let .conflict(path, message, source):
            return "\(b(source)): '\(path)': \(message)"
        case let .malformedOverride(argument):
            return "--set: '\(b(argument))' is not of the form key.path=value (e.g. training.learning_rate=2e-4, sampling.temperature=0.7)"
        case let .multiple(errors):
            return errors.map(\.description).joined(separator: "\n")
        }
    }

    /// The same problem with `prefix` before its key paths: a problem inside the item of a
    /// list of mappings, read as a document of its own, named from the top of the file.
    func prefixingPaths(with prefix: String) -> ConfigError {
        func p(_ path: String) -> String { path.isEmpty ? prefix : prefix + "." + path }
        switch self {
        case let .notAMapping(path, location): return .notAMapping(path: p(path), location: location)
        case let .unknownKey(path, location, suggestion, known):
            return .unknownKey(path: p(path), location: location, suggestion: suggestion.map(p), known: known.map(p))
        case let .unknownSection(path, location, suggestion, known):
            return .unknownKey(path: p(path), location: location, suggestion: suggestion.map(p), known: known.map(p))
        case let .duplicateKey(path, location): return .duplicateKey(path: p(path), location: location)
        case let .wrongType(path, expected, found, location):
            return .wrongType(path: p(path), expected: expected, found: found, location: location)
        case let .outOfRange(path, value, expected, location):
            return .outOfRange(path: p(path), value: value, expected: expected, location: location)
        case let .missingRequiredKey(path, source): return .missingRequiredKey(path: p(path), source: source)
        case let .conflict(path, message, source): return .conflict(path: p(path), message: message, source: source)
        case let .multiple(errors): return .multiple(errors.map { $0.prefixingPaths(with: prefix) })
        case .unreadableFile, .invalidYAML, .malformedOverride, .missingFiles: return self
        }
    }

    /// The individual problems, flattening `.multiple`.
    public var problems: [ConfigError] {
        if case let .multiple(errors) = self { return errors.flatMap(\.problems) }
        return [self]
    }
}
