import Foundation

/// Shortens text taken from input (a parser's message, a value) before it goes into an error:
/// control and format characters (bidirectional overrides, zero-width marks) are escaped and anything past `limit` characters is cut with a note of
/// how much was left out.
///
/// Usage: `throw ConfigError.invalidYAML(source: path, message: ErrorText.bounded("\(error)"))`
public enum ErrorText {
    public static func bounded(_ text: String, limit: Int = 300, keepingNewlines: Bool = false) -> String {
        var out = String.UnicodeScalarView()
        var consumed = 0
        for scalar in text.unicodeScalars {
            if out.count >= limit {
                out.append(contentsOf: "... (\(text.unicodeScalars.count - consumed) more characters)".unicodeScalars)
                break
            }
            switch scalar {
            case "\n": out.append(contentsOf: (keepingNewlines ? "\n" : "\\n").unicodeScalars)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out.append(contentsOf: String(format: "\\x%02X", scalar.value).unicodeScalars)
                } else if [.control, .format, .lineSeparator, .paragraphSeparator].contains(scalar.properties.generalCategory) {
                    // Invisible or reordering (U+202E flips the rest of a terminal line): shown as code points.
                    out.append(contentsOf: String(format: "\\u{%04X}", scalar.value).unicodeScalars)
                } else {
                    out.append(scalar)
                }
            }
            consumed += 1
        }
        return String(out)
    }
}
