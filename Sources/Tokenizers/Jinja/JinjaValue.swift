import Foundation

/// Text that remembers which parts came from the conversation's messages. The chat template's
/// own literals are markup, whose control tokens (`<|eot_id|>`) are parsed as such; message
/// text never is, wherever a template moves it.
public struct JinjaText: Equatable, Sendable {
    public struct Chunk: Equatable, Sendable {
        public var text: String
        /// True when the text came from the conversation (a message's role or content).
        public var isData: Bool
    }
    public private(set) var chunks: [Chunk] = []

    public init() {}
    public init(_ text: String, isData: Bool = false) { if !text.isEmpty { chunks = [Chunk(text: text, isData: isData)] } }

    public var string: String { chunks.map(\.text).joined() }
    public var isEmpty: Bool { chunks.isEmpty }
    var containsData: Bool { chunks.contains { $0.isData } }

    public mutating func append(_ other: JinjaText) {
        for chunk in other.chunks {
            // Compared in place: a copy of the last chunk would share its text and make += copy it whole.
            if !chunks.isEmpty, chunks[chunks.count - 1].isData == chunk.isData { chunks[chunks.count - 1].text += chunk.text } else { chunks.append(chunk) }
        }
    }

    static func + (a: JinjaText, b: JinjaText) -> JinjaText { var t = a; t.append(b); return t }

    /// A transformation of the whole text: the result is data if any part was.
    func mapped(_ transform: (String) -> String) -> JinjaText { JinjaText(transform(string), isData: containsData) }

    /// Removes leading and/or trailing Unicode scalars in `set` across chunks, keeping
    /// provenance (Python's str.strip works on code points, so "\r\n" is two of them).
    func stripped(_ set: Set<Unicode.Scalar>, leading: Bool, trailing: Bool) -> JinjaText {
        var result = chunks
        if leading {
            while let first = result.first {
                var scalars = Substring(first.text).unicodeScalars[...]
                while let c = scalars.first, set.contains(c) { scalars = scalars.dropFirst() }
                if scalars.isEmpty { result.removeFirst() } else { result[0].text = String(String.UnicodeScalarView(scalars)); break }
            }
        }
        if trailing {
            while let last = result.last {
                var scalars = Substring(last.text).unicodeScalars[...]
                while let c = scalars.last, set.contains(c) { scalars = scalars.dropLast() }
                if scalars.isEmpty { result.removeLast() } else { result[result.count - 1].text = String(String.UnicodeScalarView(scalars)); break }
            }
        }
        var t = JinjaText(); t.chunks = result; return t
    }

    /// Python's whitespace (str.isspace): what strip() and trim remove by default.
    static let pythonWhitespace: Set<Unicode.Scalar> = Set(
        [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
         0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000].compactMap(Unicode.Scalar.init(_:)))

    /// Code points, as Python indexes and counts a str.
    var scalars: [Unicode.Scalar] { Array(string.unicodeScalars) }
}

/// A mutable attribute holder (`namespace(...)`): assignments to it inside a loop are seen after it.
final class JinjaNamespace: @unchecked Sendable {
    var attributes: [(String, JinjaValue)]
    init(_ attributes: [(String, JinjaValue)]) { self.attributes = attributes }
    subscript(name: String) -> JinjaValue? {
        get { attributes.first { $0.0 == name }?.1 }
        set {
            guard let newValue else { return }
            if let i = attributes.firstIndex(where: { $0.0 == name }) { attributes[i].1 = newValue } else { attributes.append((name, newValue)) }
        }
    }
}

/// A value during rendering, with Python's (and so Jinja2's) semantics for truth, equality,
/// printing and JSON.
indirect enum JinjaValue {
    /// A missing variable, attribute or item: prints empty, is false, fails when used further.
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(JinjaText)
    case list([JinjaValue])
    /// A dict, in insertion order.
    case dict([(String, JinjaValue)])
    case namespace(JinjaNamespace)
    case function(String, ([JinjaValue], [(String, JinjaValue)]) throws -> JinjaValue)

    static func text(_ s: String, isData: Bool = false) -> JinjaValue { .string(JinjaText(s, isData: isData)) }

    var isDefined: Bool { if case .undefined = self { return false }; return true }

    /// How deep lists and dicts may nest: printing, comparing and freeing a value recurse.
    static let maxDepth = 64

    /// Nesting depth of lists and dicts, counted up to `limit` (then `limit`).
    func depth(limit: Int = maxDepth + 1) -> Int {
        guard limit > 0 else { return 0 }
        switch self {
        case let .list(l): return 1 + (l.map { $0.depth(limit: limit - 1) }.max() ?? 0)
        case let .dict(d): return 1 + (d.map { $0.1.depth(limit: limit - 1) }.max() ?? 0)
        default: return 0
        }
    }

    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case let .bool(b): return b
        case let .int(i): return i != 0
        case let .double(d): return d != 0
        case let .string(s): return !s.isEmpty
        case let .list(l): return !l.isEmpty
        case let .dict(d): return !d.isEmpty
        case .namespace, .function: return true
        }
    }

    var typeName: String {
        switch self {
        case .undefined: return "undefined"
        case .none: return "none"
        case .bool: return "boolean"
        case .int: return "integer"
        case .double: return "float"
        case .string: return "string"
        case .list: return "list"
        case .dict: return "dict"
        case .namespace: return "namespace"
        case .function: return "function"
        }
    }

    /// Python equality: 1 == 1.0 == True; lists and dicts compare element by element.
    func equals(_ other: JinjaValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(a), .string(b)): return a.string == b.string
        case let (.list(a), .list(b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case let (.dict(a), .dict(b)):
            return a.count == b.count && a.allSatisfy { k, v in b.first { $0.0 == k }.map { v.equals($0.1) } ?? false }
        case let (.namespace(a), .namespace(b)): return a === b
        default:
            if let x = numeric, let y = other.numeric { return x == y }
            return false
        }
    }

    /// Numbers and booleans as Double, for arithmetic and comparison.
    var numeric: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        case let .bool(b): return b ? 1 : 0
        default: return nil
        }
    }

    /// The text `{{ value }}` prints: Python's str().
    var printed: JinjaText {
        switch self {
        case .undefined: return JinjaText()
        case let .string(s): return s
        default: return JinjaText(pythonRepr(top: true), isData: containsData)
        }
    }

    var containsData: Bool {
        switch self {
        case let .string(s): return s.containsData
        case let .list(l): return l.contains { $0.containsData }
        case let .dict(d): return d.contains { $0.1.containsData }
        default: return false
        }
    }

    /// Python's repr (str() at the top level, where strings print bare).
    func pythonRepr(top: Bool = false) -> String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case let .double(d): return Self.pythonFloat(d)
        case let .string(s): return top ? s.string : Self.pythonStringRepr(s.string)
        case let .list(l): return "[" + l.map { $0.pythonRepr() }.joined(separator: ", ") + "]"
        case let .dict(d): return "{" + d.map { Self.pythonStringRepr($0.0) + ": " + $0.1.pythonRepr() }.joined(separator: ", ") + "}"
        case .namespace: return "<Namespace>"
        case let .function(name, _): return "<function \(name)>"
        }
    }

    static func pythonFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        if d == d.rounded(), abs(d) < 1e16 { return String(format: "%.1f", d) }
        var text = "\(d)"  // shortest round-trip digits, as Python's repr
        if let e = text.firstIndex(of: "e") {
            // Python writes 1e-05 where Swift writes 1e-05 too, but 1.5e+20 as 1.5e+20: keep two exponent digits.
            let mantissa = text[..<e], exponent = text[text.index(after: e)...]
            let sign = exponent.hasPrefix("-") ? "-" : "+"
            let digits = exponent.drop { $0 == "-" || $0 == "+" }
            text = mantissa + "e" + sign + (digits.count < 2 ? "0" + digits : String(digits))
        }
        return text
    }

    static func pythonStringRepr(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(scalar) == quote { out += "\\" + String(quote) }
                else if scalar.value < 0x20 || scalar.value == 0x7f { out += String(format: "\\x%02x", scalar.value) }
                else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + String(quote)
    }

    /// Python's json.dumps with ensure_ascii=False (transformers' tojson).
    func json(indent: Int?, sortKeys: Bool, itemSeparator: String? = nil, keySeparator: String = ": ", ensureASCII: Bool = false, level: Int = 0) throws -> String {
        guard level < JinjaValue.maxDepth else { throw JinjaError.render(line: 0, message: "tojson: values nest deeper than \(JinjaValue.maxDepth)") }
        let separator = itemSeparator ?? (indent == nil ? ", " : ",")
        func newline(_ depth: Int) -> String { indent.map { "\n" + String(repeating: " ", count: $0 * depth) } ?? "" }
        switch self {
        case .none, .undefined: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .int(i): return String(i)
        case let .double(d):
            if d.isNaN { return "NaN" }
            if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
            return Self.pythonFloat(d)
        case let .string(s): return Self.jsonString(s.string, ensureASCII: ensureASCII)
        case let .list(l):
            if l.isEmpty { return "[]" }
            return "[" + newline(level + 1) + (try l.map { try $0.json(indent: indent, sortKeys: sortKeys, itemSeparator: itemSeparator, keySeparator: keySeparator, ensureASCII: ensureASCII, level: level + 1) })
                .joined(separator: separator + newline(level + 1)) + newline(level) + "]"
        case let .dict(d):
            if d.isEmpty { return "{}" }
            let items = sortKeys ? d.sorted { $0.0 < $1.0 } : d
            return "{" + newline(level + 1) + (try items.map { Self.jsonString($0.0, ensureASCII: ensureASCII) + keySeparator + (try $0.1.json(indent: indent, sortKeys: sortKeys, itemSeparator: itemSeparator, keySeparator: keySeparator, ensureASCII: ensureASCII, level: level + 1)) })
                .joined(separator: separator + newline(level + 1)) + newline(level) + "}"
        case .namespace, .function:
            throw JinjaError.render(line: 0, message: "tojson cannot write a \(typeName)")
        }
    }

    static func jsonString(_ s: String, ensureASCII: Bool = false) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || (ensureASCII && scalar.value == 0x7F) {
                    out += String(format: "\\u%04x", scalar.value)
                } else if ensureASCII && scalar.value > 0x7F {
                    for unit in String(scalar).utf16 { out += String(format: "\\u%04x", unit) }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
