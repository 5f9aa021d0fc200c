import Foundation
import Yams

/// Turns YAML text and `--set` overrides into validated values for every schema key.
///
/// The YAML is composed into a node tree (not decoded into a struct) so that each value keeps
/// its line for error messages and so that unknown keys are noticed instead of ignored.
enum ConfigParser {
    /// Validated values for every key, defaults filled in. Throws `ConfigError` listing every
    /// problem found (unknown keys, wrong types, out-of-range values, missing required keys).
    static func resolve(yaml: String, source: String, overrides: [String]) throws -> [String: ConfigValue] {
        var values: [String: ConfigValue] = [:]
        var errors: [ConfigError] = []
        for key in ConfigSchema.keys { if let d = key.defaultValue { values[key.path] = d } }

        let root: Node?
        do {
            root = try BoundedYAML.compose(yaml)
        } catch {
            throw ConfigError.invalidYAML(source: source, message: "\(error)")
        }
        if let root { readDocument(root, source: source, into: &values, errors: &errors) }

        for argument in overrides {
            do {
                let (path, value) = try parseOverride(argument)
                values[path] = value
            } catch let error as ConfigError {
                errors.append(error)
            }
        }
        for key in ConfigSchema.keys where key.isRequired && values[key.path] == nil {
            errors.append(.missingRequiredKey(path: key.path, source: source))
        }
        if errors.count == 1 { throw errors[0] }
        if !errors.isEmpty { throw ConfigError.multiple(errors) }
        return values
    }

    private static func readDocument(
        _ root: Node, source: String, into values: inout [String: ConfigValue], errors: inout [ConfigError]
    ) {
        if case let .scalar(scalar) = root, isNull(scalar) { return }  // an empty document
        guard case let .mapping(sections) = root else {
            errors.append(.notAMapping(path: "", location: location(of: root, source: source)))
            return
        }
        var seenSections = Set<String>()
        for (sectionNode, body) in sections {
            let sectionName = sectionNode.scalar?.string ?? "\(sectionNode)"
            let sectionLocation = location(of: sectionNode, source: source)
            guard ConfigSchema.sections.contains(sectionName) else {
                errors.append(.unknownKey(
                    path: sectionName, location: sectionLocation,
                    suggestion: ConfigSchema.suggestion(for: sectionName)))
                continue
            }
            guard seenSections.insert(sectionName).inserted else {
                errors.append(.duplicateKey(path: sectionName, location: sectionLocation))
                continue
            }
            if case let .scalar(scalar) = body, isNull(scalar) { continue }  // "lora:" with nothing under it
            guard case let .mapping(entries) = body else {
                errors.append(.notAMapping(path: sectionName, location: location(of: body, source: source)))
                continue
            }
            var seenKeys = Set<String>()
            for (keyNode, valueNode) in entries {
                let path = sectionName + "." + (keyNode.scalar?.string ?? "\(keyNode)")
                let keyLocation = location(of: keyNode, source: source)
                guard let key = ConfigSchema.keysByPath[path] else {
                    errors.append(.unknownKey(
                        path: path, location: keyLocation, suggestion: ConfigSchema.suggestion(for: path)))
                    continue
                }
                guard seenKeys.insert(path).inserted else {
                    errors.append(.duplicateKey(path: path, location: keyLocation))
                    continue
                }
                do {
                    values[path] = try interpret(valueNode, for: key, location: keyLocation)
                } catch let error as ConfigError {
                    errors.append(error)
                } catch {
                    errors.append(.invalidYAML(source: source, message: "\(error)"))
                }
            }
        }
    }

    /// `training.learning_rate=2e-4` → the key path and its validated value; the value is
    /// parsed as YAML, so lists (`[q_proj, v_proj]`) and `null` work as in the file.
    static func parseOverride(_ argument: String) throws -> (String, ConfigValue) {
        guard let equals = argument.firstIndex(of: "=") else { throw ConfigError.malformedOverride(argument: argument) }
        let path = argument[..<equals].trimmingCharacters(in: .whitespaces)
        let text = String(argument[argument.index(after: equals)...])
        guard !path.isEmpty else { throw ConfigError.malformedOverride(argument: argument) }
        let overrideLocation = ConfigLocation(source: "--set \(argument)", line: nil)
        guard let key = ConfigSchema.keysByPath[path] else {
            throw ConfigError.unknownKey(
                path: path, location: overrideLocation, suggestion: ConfigSchema.suggestion(for: path))
        }
        let node: Node
        do {
            node = try BoundedYAML.compose(text) ?? Node.scalar(.init("null"))
        } catch {
            throw ConfigError.invalidYAML(source: overrideLocation.source, message: "\(error)")
        }
        return (path, try interpret(node, for: key, location: overrideLocation))
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

    static func interpret(_ node: Node, for key: ConfigKey, location: ConfigLocation) throws -> ConfigValue {
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
            guard !name.isEmpty, !name.contains("/"), name != ".", name != "..", !name.contains("\0") else {
                throw outOfRange("'\(name)'")
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
                    return .list([.string(path), .float(1)])
                case .list(let pair) where pair.count == 2:
                    // The resolved config's own form, [path, weight].
                    guard case let .string(path, _) = literal(pair[0]) else { throw wrongType() }
                    return .list([.string(path), .float(try weight(pair[1]))])
                case .mapping:
                    guard case let .mapping(entries) = item else { throw wrongType() }
                    var path: String?, w = 1.0
                    for (k, v) in entries {
                        switch k.scalar?.string {
                        case "path":
                            guard case let .string(p, _) = literal(v), !p.isEmpty else { throw wrongType() }
                            path = p
                        case "weight": w = try weight(v)
                        default: throw outOfRange("a mapping with the key '\(k.scalar?.string ?? "?")' (only path and weight)")
                        }
                    }
                    guard let path else { throw outOfRange("a mapping without path") }
                    return .list([.string(path), .float(w)])
                default:
                    throw wrongType()
                }
            })
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
