/// Writes config values as YAML that `ConfigParser` (and PyYAML) read back to the same values.
enum ConfigYAML {
    /// Every schema key in schema order, grouped by section. Strings are always double-quoted so
    /// that a name like `true` or `2024` stays a string.
    static func emit(_ values: [String: ConfigValue], header: String?) -> String {
        var lines: [String] = []
        if let header { lines.append("# " + header) }
        for section in ConfigSchema.finetune.sections {
            lines.append("\(section):")
            for key in ConfigSchema.finetune.keys where key.section == section {
                lines.append("  \(key.name): \(format(values[key.path] ?? .null))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func format(_ value: ConfigValue) -> String {
        switch value {
        case let .string(s): return quote(s)
        case let .int(i): return String(i)
        case let .float(d): return formatFloat(d)
        case let .bool(b): return b ? "true" : "false"
        case let .list(items):
            return "[" + items.map { item in
                // A data.mix entry reads path first, then weight and its own settings.
                if case let .record(fields) = item, case let .string(path)? = fields["path"], case let .float(w)? = fields["weight"] {
                    var text = "{path: \(quote(path)), weight: \(formatFloat(w))"
                    for key in ["chain_of_thought", "objective"] {
                        if let value = fields[key] { text += ", \(key): \(format(value))" }
                    }
                    return text + "}"
                }
                return format(item)
            }.joined(separator: ", ") + "]"
        case let .record(fields):
            return "{" + fields.sorted { $0.key < $1.key }.map { "\($0.key): \(format($0.value))" }.joined(separator: ", ") + "}"
        case .null: return "null"
        }
    }

    /// The shortest text that parses back to exactly `d`, always with a decimal point so that
    /// YAML 1.1 readers (PyYAML) see a float: 16.0, 0.0002, 1.0e-08.
    static func formatFloat(_ d: Double) -> String {
        var text = "\(d)"
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }), !text[..<e].contains(".") {
            text.insert(contentsOf: ".0", at: e)
        }
        return text
    }

    /// A compact number for messages and docs: 1 rather than 1.0.
    static func formatShort(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : "\(d)"
    }

    private static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\x" + String(scalar.value, radix: 16).leftPadded(to: 2)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
