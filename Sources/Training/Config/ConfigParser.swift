import Foundation
import ModelFormats
import Yams

/// Turns YAML text and `--set` overrides into validated values for every schema key.
///
/// The YAML is composed into a node tree (not decoded into a struct) so that each value keeps
/// its line for error messages and so that unknown keys are noticed instead of ignored.
public enum ConfigParser {
    /// Validated values for every key of `schema`, defaults filled in. Throws `ConfigError`
    /// listing every problem found (unknown keys, wrong types, out-of-range values, missing
    /// required keys).
    public static func resolve(yaml: String, source: String, overrides: [String], schema: ConfigSchema = .finetune) throws -> [String: ConfigValue] {
        let (values, errors) = try read(yaml: yaml, source: source, overrides: overrides, schema: schema)
        try throwIfAny(errors)
        return values
    }

    /// As `resolve`, but returns the problems instead of throwing them, so a caller can add
    /// its own checks across keys and report everything at once (`throwIfAny`). Only YAML that
    /// does not parse throws.
    public static func read(yaml: String, source: String, overrides: [String], schema: ConfigSchema) throws -> (values: [String: ConfigValue], errors: [ConfigError]) {
        var values: [String: ConfigValue] = [:]
        var errors: [ConfigError] = []
        for key in schema.keys { if let d = key.defaultValue { values[key.path] = d } }

        let root: Node?
        do {
            root = try BoundedYAML.compose(yaml)
        } catch {
            throw ConfigError.invalidYAML(source: source, message: "\(error)")
        }
        if let root {
            if case let .scalar(scalar) = root, isNull(scalar) {
                // an empty document
            } else {
                readMapping(root, group: "", schema: schema, source: source, into: &values, errors: &errors)
            }
        }

        for argument in overrides {
            do {
                if let (group, node) = mappingOverride(argument, schema: schema) {
                    // `--set sampling={temperature: 0.7, top_p: 0.9}`: the mapping's keys, as in the file.
                    readMapping(node, group: group, schema: schema, source: "--set \(argument)", into: &values, errors: &errors, lines: false)
                    continue
                }
                let (path, value) = try parseOverride(argument, schema: schema)
                values[path] = value
            } catch let error as ConfigError {
                errors.append(error)
            }
        }
        for key in schema.keys where key.isRequired && values[key.path] == nil {
            errors.append(.missingRequiredKey(path: key.path, source: source))
        }
        return (values, errors)
    }

    /// Throws the problems: one as it is, several as `.multiple`.
    public static func throwIfAny(_ errors: [ConfigError]) throws {
        if errors.count == 1 { throw errors[0] }
        if !errors.isEmpty { throw ConfigError.multiple(errors) }
    }

    /// Reads the mapping at `group` ("" for the document), descending into nested mappings.
    /// `lines` false leaves line numbers out of locations (a `--set` value is one line of its own).
    private static func readMapping(
        _ node: Node, group: String, schema: ConfigSchema, source: String,
        into values: inout [String: ConfigValue], errors: inout [ConfigError], lines: Bool = true
    ) {
        func location(of node: Node, source: String) -> ConfigLocation {
            ConfigLocation(source: source, line: lines ? node.mark?.line : nil)
        }
        guard case let .mapping(entries) = node else {
            errors.append(.notAMapping(path: group, location: location(of: node, source: source)))
            return
        }
        var seen = Set<String>()
        for (keyNode, valueNode) in entries {
            let name = keyNode.scalar?.string ?? "\(keyNode)"
            let path = group.isEmpty ? name : group + "." + name
            let keyLocation = location(of: keyNode, source: source)
            guard seen.insert(path).inserted else {
                errors.append(.duplicateKey(path: path, location: keyLocation))
                continue
            }
            if let key = schema.keysByPath[path] {
                do {
                    values[path] = try interpret(valueNode, for: key, location: keyLocation, source: source)
                } catch let error as ConfigError {
                    errors.append(error)
                } catch {
                    errors.append(.invalidYAML(source: source, message: "\(error)"))
                }
            } else if schema.groups.contains(path) {
                if case let .scalar(scalar) = valueNode, isNull(scalar) { continue }  // "lora:" with nothing under it
                readMapping(valueNode, group: path, schema: schema, source: source, into: &values, errors: &errors, lines: lines)
            } else {
                errors.append(unknown(path, in: group, schema: schema, location: keyLocation))
            }
        }
    }

    private static func unknown(_ path: String, in group: String, schema: ConfigSchema, location: ConfigLocation) -> ConfigError {
        let known = schema.names(under: group)
        if !path.contains("."), schema.holdsOnlySections(group) {
            return .unknownSection(path: path, location: location, suggestion: schema.suggestion(for: path), known: known)
        }
        return .unknownKey(path: path, location: location, suggestion: schema.suggestion(for: path), known: known)
    }

    /// A `--set` whose path names a mapping of the schema (a section) and whose value is a
    /// mapping: its group and the value's node; nil for every other override.
    private static func mappingOverride(_ argument: String, schema: ConfigSchema) -> (String, Node)? {
        guard let equals = argument.firstIndex(of: "=") else { return nil }
        let path = argument[..<equals].trimmingCharacters(in: .whitespaces)
        guard schema.groups.contains(path) else { return nil }
        let text = String(argument[argument.index(after: equals)...])
        guard let node = try? BoundedYAML.compose(text), case .mapping = node else { return nil }
        return (path, node)
    }

    /// `training.learning_rate=2e-4` → the key path and its validated value; the value is
    /// parsed as YAML, so lists (`[q_proj, v_proj]`) and `null` work as in the file.
    static func parseOverride(_ argument: String, schema: ConfigSchema = .finetune) throws -> (String, ConfigValue) {
        guard let equals = argument.firstIndex(of: "=") else { throw ConfigError.malformedOverride(argument: argument) }
        let path = argument[..<equals].trimmingCharacters(in: .whitespaces)
        let text = String(argument[argument.index(after: equals)...])
        guard !path.isEmpty else { throw ConfigError.malformedOverride(argument: argument) }
        let overrideLocation = ConfigLocation(source: "--set \(argument)", line: nil)
        guard let key = schema.keysByPath[path] else {
            let group = path.split(separator: ".").dropLast().joined(separator: ".")
            throw unknown(path, in: schema.groups.contains(group) ? group : "", schema: schema, location: overrideLocation)
        }
        let node: Node
        do {
            node = try BoundedYAML.compose(text) ?? Node.scalar(.init("null"))
        } catch {
            throw ConfigError.invalidYAML(source: overrideLocation.source, message: "\(error)")
        }
        return (path, try interpret(node, for: key, location: overrideLocation, source: overrideLocation.source))
    }

    // MARK: - Values

    /// What a YAML node holds, before it is checked against a key.
    private enum Literal {
        case null, bool(Bool), int(Int), float(Double, text: String), string(String, plain: Bool)
        case list([Node]), mapping

        var description: String {
            switch self {
            case .null: return "null"
            case let .bool(b): return String(b)
            case let .int(i): return "the integer \(i)"
            case let .float(_, text): return "the number \(text)"
            case let .string(s, _): return "the string '\(s)'"
            case .list: return "a list"
            case .mapping: return "a mapping"
            }
        }
    }

    private static func literal(_ node: Node) -> Literal {
        switch node {
        case .mapping: return .mapping
        case let .sequence(sequence): return .list(Array(sequence))
        case let .scalar(scalar):
            let text = scalar.string
            guard scalar.style == .plain || scalar.style == .any else { return .string(text, plain: false) }
            // `!!str 5` is the string "5", as YAML says: an explicit tag outranks the plain style.
            if scalar.tag.description == "tag:yaml.org,2002:str" { return .string(text, plain: false) }
            if isNull(scalar) { return .null }
            switch text {
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            default: break
            }
            if let i = Int(text) { return .int(i) }
            // Double("inf") and Double("nan") parse, so insist on digits and exponent marks only.
            let numeric = text.contains(where: \.isNumber)
                && text.allSatisfy { "0123456789+-.eE".contains($0) }
            if numeric, let d = Double(text), d.isFinite { return .float(d, text: text) }
            return .string(text, plain: true)
        }
    }

    private static func isNull(_ scalar: Node.Scalar) -> Bool {
        guard scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    static func interpret(_ node: Node, for key: ConfigKey, location: ConfigLocation, source: String) throws -> ConfigValue {
        let found = literal(node)
        func wrongType() -> ConfigError {
            .wrongType(path: key.path, expected: key.kind.expectation + (key.nullable ? " or null" : ""),
                       found: found.description, location: location)
        }
        func outOfRange(_ shown: String) -> ConfigError {
            .outOfRange(path: key.path, value: shown, expected: key.kind.expectation, location: location)
        }
        if case .null = found {
            if key.nullable { return .null }
            throw wrongType()
        }
        switch key.kind {
        case .string:
            switch found {
            case let .string(s, _): return .string(s)
            // A plain number is still a fine name or path (run.name: 2024).
            case let .int(i): return .string(String(i))
            case let .float(_, text): return .string(text)
            default: throw wrongType()
            }
        case .name:
            let name: String
            switch found {
            case let .string(s, _): name = s
            case let .int(i): name = String(i)
            case let .float(_, text): name = text
            default: throw wrongType()
            }
            // Control and format characters (a newline, U+202E RIGHT-TO-LEFT OVERRIDE) would make
            // a directory name that prints as something else.
            let invisible = name.unicodeScalars.contains { [.control, .format, .lineSeparator, .paragraphSeparator].contains($0.properties.generalCategory) }
            guard !name.isEmpty, !name.contains("/"), name != ".", name != "..", !invisible else {
                throw outOfRange("'\(ErrorText.bounded(name, limit: 80))'")
            }
            return .string(name)
        case .bool:
            guard case let .bool(b) = found else { throw wrongType() }
            return .bool(b)
        case let .int(min, max):
            guard case let .int(i) = found else { throw wrongType() }
            if let min, i < min { throw outOfRange(String(i)) }
            if let max, i > max { throw outOfRange(String(i)) }
            return .int(i)
        case let .float(min, minInclusive, max, maxInclusive):
            let d: Double, shown: String
            switch found {
            case let .int(i): d = Double(i); shown = String(i)
            case let .float(value, text): d = value; shown = text
            default: throw wrongType()
            }
            if let min, minInclusive ? d < min : d <= min { throw outOfRange(shown) }
            if let max, maxInclusive ? d > max : d >= max { throw outOfRange(shown) }
            return .float(d)
        case let .choice(options):
            guard case let .string(s, _) = found else { throw wrongType() }
            guard options.contains(s) else { throw outOfRange("'\(s)'") }
            return .string(s)
        case let .choiceList(options):
            guard case let .list(items) = found else { throw wrongType() }
            var result: [String] = []
            for item in items {
                guard case let .string(s, _) = literal(item) else { throw wrongType() }
                guard options.contains(s), !result.contains(s) else { throw outOfRange(ConfigValue.string(s).description) }
                result.append(s)
            }
            guard !result.isEmpty else { throw outOfRange("an empty list") }
            return .list(result.map(ConfigValue.string))
        case let .intList(min):
            guard case let .list(items) = found else { throw wrongType() }
            var result: [Int] = []
            for item in items {
                guard case let .int(i) = literal(item) else { throw wrongType() }
                if let min, i < min { throw outOfRange(String(i)) }
                guard !result.contains(i) else { throw outOfRange("\(i) (listed twice)") }
                result.append(i)
            }
            guard !result.isEmpty else { throw outOfRange("an empty list") }
            return .list(result.map(ConfigValue.int))
        case .datasetMix:
            guard case let .list(items) = found, !items.isEmpty else { throw wrongType() }
            return .list(try items.map { item -> ConfigValue in
                switch literal(item) {
                case let .string(path, _) where !path.isEmpty:
                    return .record(["path": .string(path), "weight": .float(1)])
                case .list(let pair) where pair.count == 2:
                    // An older resolved config's form, [path, weight].
                    guard case let .string(path, _) = literal(pair[0]) else { throw wrongType() }
                    return .record(["path": .string(path), "weight": .float(try weight(pair[1]))])
                case .mapping:
                    guard case let .mapping(entries) = item else { throw wrongType() }
                    var fields: [String: ConfigValue] = ["weight": .float(1)]
                    func choice(_ key: String, _ v: Node, _ choices: [String]) throws -> ConfigValue {
                        guard case let .string(c, _) = literal(v), choices.contains(c) else {
                            throw outOfRange("a \(key) of \(literal(v).description) (one of \(choices.joined(separator: ", ")))")
                        }
                        return .string(c)
                    }
                    for (k, v) in entries {
                        switch k.scalar?.string {
                        case "path":
                            guard case let .string(p, _) = literal(v), !p.isEmpty else { throw wrongType() }
                            fields["path"] = .string(p)
                        case "weight": fields["weight"] = .float(try weight(v))
                        case "chain_of_thought": fields["chain_of_thought"] = try choice("chain_of_thought", v, ChainOfThoughtSetting.allCases.map(\.rawValue))
                        case "objective": fields["objective"] = try choice("objective", v, TrainingObjective.allCases.map(\.rawValue))
                        default: throw outOfRange("a mapping with the key '\(k.scalar?.string ?? "?")' (only path, weight, chain_of_thought and objective)")
                        }
                    }
                    guard fields["path"] != nil else { throw outOfRange("a mapping without path") }
                    return .record(fields)
                default:
                    throw wrongType()
                }
            })
        case let .stringList(choices):
            let items: [Node]
            switch found {
            case .string, .int, .float: items = [node]
            case let .list(list): items = list
            default: throw wrongType()
            }
            var result: [String] = []
            for item in items {
                let text: String
                switch literal(item) {
                case let .string(s, _): text = s
                case let .int(i): text = String(i)
                case let .float(_, t): text = t
                default: throw wrongType()
                }
                if let choices, !choices.contains(text) { throw outOfRange("'\(text)'") }
                result.append(text)
            }
            return .list(result.map(ConfigValue.string))
        case let .records(fields):
            guard case let .list(items) = found else { throw wrongType() }
            // Each item is a small document of its own: every problem of every item is
            // collected and thrown together, each named by its index ("adapters[1].path").
            let itemSchema = ConfigSchema(keys: fields)
            var records: [ConfigValue] = [], problems: [ConfigError] = []
            for (i, item) in items.enumerated() {
                var fieldValues: [String: ConfigValue] = [:], itemErrors: [ConfigError] = []
                for field in fields { if let d = field.defaultValue { fieldValues[field.path] = d } }
                let itemLocation = ConfigLocation(source: location.source, line: item.mark?.line ?? location.line)
                if case .mapping = item {
                    readMapping(item, group: "", schema: itemSchema, source: source, into: &fieldValues, errors: &itemErrors)
                } else {
                    itemErrors.append(.notAMapping(path: "", location: itemLocation))
                }
                for field in fields where field.isRequired && fieldValues[field.path] == nil {
                    itemErrors.append(.missingRequiredKey(path: field.path, source: itemLocation.description))
                }
                problems += itemErrors.map { $0.prefixingPaths(with: "\(key.path)[\(i)]") }
                records.append(.record(fieldValues))
            }
            try throwIfAny(problems)
            return .list(records)
        }
        func weight(_ node: Node) throws -> Double {
            let w: Double
            switch literal(node) {
            case let .int(i): w = Double(i)
            case let .float(d, _): w = d
            default: throw wrongType()
            }
            guard w > 0, w <= 100 else { throw outOfRange("weight \(ConfigYAML.formatShort(w))") }
            return w
        }
    }

    private static func location(of node: Node, source: String) -> ConfigLocation {
        ConfigLocation(source: source, line: node.mark?.line)
    }
}
