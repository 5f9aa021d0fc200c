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

/// Why a finetune config was rejected. Every case names the key path and where it came from.
public enum ConfigError: Error, Equatable, CustomStringConvertible {
    case unreadableFile(path: String, reason: String)
    case invalidYAML(source: String, message: String)
    /// The document (or a section) is not a mapping of keys to values.
    case notAMapping(path: String, location: ConfigLocation)
    case unknownKey(path: String, location: ConfigLocation, suggestion: String?)
    case duplicateKey(path: String, location: ConfigLocation)
    case wrongType(path: String, expected: String, found: String, location: ConfigLocation)
    case outOfRange(path: String, value: String, expected: String, location: ConfigLocation)
    case missingRequiredKey(path: String, source: String)
    /// A `--set` argument that is not of the form `section.key=value`.
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
        case let .invalidYAML(source, message):
            return "\(b(source)): not valid YAML: \(message)"
        case let .notAMapping(path, location):
            let what = path.isEmpty ? "the config" : "'\(b(path))'"
            return "\(at(location)): \(what) must be a mapping of keys to values"
        case let .unknownKey(path, location, suggestion):
            let kind = path.contains(".") ? "key" : "section"
            let hint = suggestion.map { "; did you mean '\($0)'?" }
                ?? "; valid sections: \(ConfigSchema.sections.joined(separator: ", "))"
            return "\(at(location)): unknown \(kind) '\(b(path))'\(hint)"
        case let .duplicateKey(path, location):
            return "\(at(location)): key '\(b(path))' appears twice"
        case let .wrongType(path, expected, found, location):
            return "\(at(location)): '\(b(path))' must be \(expected), got \(b(found))"
        case let .outOfRange(path, value, expected, location):
            return "\(at(location)): '\(b(path))' is \(b(value)), but must be \(expected)"
        case let .missingRequiredKey(path, source):
            return "\(b(source)): required key '\(path)' is missing"
        case let .malformedOverride(argument):
            return "--set: '\(b(argument))' is not of the form section.key=value (e.g. training.learning_rate=2e-4)"
        case let .multiple(errors):
            return errors.map(\.description).joined(separator: "\n")
        }
    }

    /// The individual problems, flattening `.multiple`.
    public var problems: [ConfigError] {
        if case let .multiple(errors) = self { return errors.flatMap(\.problems) }
        return [self]
    }
}
