import Foundation

/// Jinja2's filters and tests, and the Python methods of strings, lists and dicts that chat
/// templates call (`content.split('</think>')`, `message.get('x')`, `tool.items()`).
extension JinjaRenderer {
    private static let whitespace = JinjaText.pythonWhitespace

    private func characters(_ v: JinjaValue?) throws -> Set<Unicode.Scalar> {
        switch v {
        case nil, .none?: return Self.whitespace
        case let .string(s)?: return Set(s.string.unicodeScalars)
        default: throw fail("strip() takes a string of characters")
        }
    }

    private func string(_ v: JinjaValue, _ what: String) throws -> JinjaText {
        guard case let .string(s) = v else { throw fail("\(what) needs a string, not \(v.typeName)") }
        return s
    }

    /// Non-overlapping occurrences of `needle` in `haystack`, as str.replace counts them.
    static func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> Int {
        guard !needle.isEmpty, needle.count <= haystack.count else { return 0 }
        var count = 0, i = 0
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) { count += 1; i += needle.count } else { i += 1 }
        }
        return count
    }

    func method(_ object: JinjaValue, _ name: String) throws -> JinjaValue? {
        switch object {
        case let .string(s):
            let text = s.string
            switch name {
            case "strip", "lstrip", "rstrip":
                return .function(name) { [unowned self] args, _ in
                    let set = try self.characters(args.first)
                    return .string(s.stripped(set, leading: name != "rstrip", trailing: name != "lstrip"))
                }
            case "split", "rsplit":
                return .function(name) { [unowned self] args, _ in
                    let parts: [String]
                    if let sep = args.first, case .string = sep {
                        let separator = try self.string(sep, "split()").string
                        guard !separator.isEmpty else { throw self.fail("split() with an empty separator") }
                        parts = text.components(separatedBy: separator)
                    } else {
                        parts = text.unicodeScalars.split(whereSeparator: { Self.whitespace.contains($0) }).map { String(String.UnicodeScalarView($0)) }
                    }
                    var limited = parts
                    if args.count > 1, case let .int(maxsplit) = args[1], maxsplit >= 0, parts.count > maxsplit + 1, case let .string(sep)? = args.first {
                        if name == "split" {
                            limited = Array(parts.prefix(maxsplit)) + [parts.dropFirst(maxsplit).joined(separator: sep.string)]
                        } else {
                            limited = [parts.dropLast(maxsplit).joined(separator: sep.string)] + Array(parts.suffix(maxsplit))
                        }
                    }
                    return .list(limited.map { .text($0, isData: s.containsData) })
                }
            case "startswith", "endswith":
                return .function(name) { [unowned self] args, _ in
                    guard let first = args.first else { throw self.fail("\(name)() takes a string") }
                    let options: [JinjaValue]
                    if case let .list(l) = first { options = l } else { options = [first] }
                    return .bool(try options.contains { o in
                        let p = try self.string(o, "\(name)()").string
                        return name == "startswith" ? text.hasPrefix(p) : text.hasSuffix(p)
                    })
                }
            case "upper": return .function(name) { _, _ in .string(s.mapped { $0.uppercased() }) }
            case "lower": return .function(name) { _, _ in .string(s.mapped { $0.lowercased() }) }
            case "title": return .function(name) { _, _ in .string(s.mapped { $0.capitalized }) }
            case "capitalize": return .function(name) { _, _ in .string(s.mapped { $0.prefix(1).uppercased() + $0.dropFirst().lowercased() }) }
            case "replace":
                return .function(name) { [unowned self] args, _ in
                    guard args.count >= 2 else { throw self.fail("replace() takes two strings") }
                    let old = try self.string(args[0], "replace()").string, new = try self.string(args[1], "replace()")
                    let isData = s.containsData || new.containsData
                    guard !old.isEmpty else { return .text(text, isData: isData) }
                    let occurrences = Self.occurrences(of: Array(old.utf8), in: Array(text.utf8))
                    try self.checkSize(text.utf8.count + occurrences * max(0, new.string.utf8.count - old.utf8.count))
                    return .text(text.replacingOccurrences(of: old, with: new.string), isData: isData)
                }
            case "find":
                return .function(name) { [unowned self] args, _ in
                    guard let a = args.first else { throw self.fail("find() takes a string") }
                    let needle = try self.string(a, "find()").string
                    guard let range = text.range(of: needle, options: .literal) else { return .int(-1) }
                    return .int(text.unicodeScalars.distance(from: text.unicodeScalars.startIndex, to: range.lowerBound))
                }
            case "count":
                return .function(name) { [unowned self] args, _ in
                    guard let a = args.first else { throw self.fail("count() takes a string") }
                    let needle = try self.string(a, "count()").string
                    return .int(needle.isEmpty ? text.count + 1 : text.components(separatedBy: needle).count - 1)
                }
            case "join":
                return .function(name) { [unowned self] args, _ in
                    guard let a = args.first else { throw self.fail("join() takes a list") }
                    var out = JinjaText(), size = 0
                    for (k, v) in try self.iterate(a).enumerated() {
                        let piece = v.printed
                        size += piece.string.utf8.count + (k > 0 ? text.utf8.count : 0)
                        try self.checkSize(size)
                        if k > 0 { out.append(s) }
                        out.append(piece)
                    }
                    return .string(out)
                }
            case "splitlines":
                return .function(name) { _, _ in .list(text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map { .text(String($0), isData: s.containsData) }) }
            case "isdigit": return .function(name) { _, _ in .bool(!text.isEmpty && text.allSatisfy { $0.isNumber }) }
            case "isspace": return .function(name) { _, _ in .bool(!text.isEmpty && text.allSatisfy { $0.isWhitespace }) }
            default: return nil
            }
        case let .dict(d):
            switch name {
            case "items": return .function(name) { _, _ in .list(d.map { .list([.text($0.0), $0.1]) }) }
            case "keys": return .function(name) { _, _ in .list(d.map { .text($0.0) }) }
            case "values": return .function(name) { _, _ in .list(d.map(\.1)) }
            case "get":
                return .function(name) { args, _ in
                    guard case let .string(k)? = args.first else { return args.count > 1 ? args[1] : .none }
                    return d.first { $0.0 == k.string }?.1 ?? (args.count > 1 ? args[1] : .none)
                }
            default: return nil
            }
        case let .list(l):
            switch name {
            case "index":
                return .function(name) { [unowned self] args, _ in
                    guard let a = args.first, let i = l.firstIndex(where: { $0.equals(a) }) else { throw self.fail("index(): the value is not in the list") }
                    return .int(i)
                }
            case "count": return .function(name) { args, _ in .int(args.first.map { a in l.filter { $0.equals(a) }.count } ?? 0) }
            default: return nil
            }
        default:
            return nil
        }
    }

    func applyFilter(_ name: String, _ value: JinjaValue, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        func kw(_ key: String, _ position: Int) -> JinjaValue? { kwargs.first { $0.0 == key }?.1 ?? (position < args.count ? args[position] : nil) }
        switch name {
        case "trim", "strip":
            guard case let .string(s) = value else { return .string(value.printed.stripped(Self.whitespace, leading: true, trailing: true)) }
            return .string(s.stripped(try characters(kw("chars", 0)), leading: true, trailing: true))
        case "length", "count":
            switch value {
            case let .string(s): return .int(s.string.unicodeScalars.count)
            case let .list(l): return .int(l.count)
            case let .dict(d): return .int(d.count)
            case .undefined: return .int(0)
            default: throw fail("a \(value.typeName) has no length")
            }
        case "string": return .string(value.printed)
        case "safe", "e", "escape", "forceescape":
            if name == "safe" { return value }
            return .string(value.printed.mapped {
                $0.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
                    .replacingOccurrences(of: "\"", with: "&#34;").replacingOccurrences(of: "'", with: "&#39;")
            })
        case "upper", "lower", "title", "capitalize":
            guard let m = try method(.string(value.printed), name), case let .function(_, f) = m else { throw fail("\(name) needs a string") }
            return try f([], [])
        case "replace":
            guard let m = try method(.string(value.printed), "replace"), case let .function(_, f) = m else { throw fail("replace needs a string") }
            return try f(args, [])
        case "tojson":
            // transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
            let ensureASCII = kw("ensure_ascii", 0)?.truthy ?? false
            var indent: Int?
            if case let .int(i)? = kw("indent", 1) { indent = min(max(0, i), 64) }  // Python indents nothing below 0
            var sortKeys = false
            if let s = kw("sort_keys", 3) { sortKeys = s.truthy }
            var itemSeparator: String?, keySeparator = ": "
            if case let .list(pair)? = kw("separators", 2), pair.count == 2, case let .string(a) = pair[0], case let .string(b) = pair[1] {
                itemSeparator = a.string; keySeparator = b.string
            }
            do {
                let text = try value.json(indent: indent, sortKeys: sortKeys, itemSeparator: itemSeparator, keySeparator: keySeparator, ensureASCII: ensureASCII)
                try checkSize(text.utf8.count)
                return .text(text, isData: value.containsData)
            } catch let error as JinjaError {
                if case .render(0, let message) = error { throw fail(message) }
                throw error
            }
        case "join":
            let separator = kw("d", 0)?.printed ?? JinjaText()
            var items = try iterate(value)
            if let attribute = kw("attribute", 1) { items = try items.map { try self.attribute($0, attribute.printed.string, preferItem: true) } }
            var out = JinjaText(), size = 0
            for (k, v) in items.enumerated() {
                let piece = v.printed
                size += piece.string.utf8.count + (k > 0 ? separator.string.utf8.count : 0)
                try checkSize(size)
                if k > 0 { out.append(separator) }
                out.append(piece)
            }
            return .string(out)
        case "first": return try iterate(value).first ?? .undefined("first")
        case "last": return try iterate(value).last ?? .undefined("last")
        case "list": return .list(try iterate(value))
        case "reverse":
            if case let .string(s) = value { return .string(s.mapped { String($0.reversed()) }) }
            return .list(try iterate(value).reversed())
        case "unique":
            var seen: [JinjaValue] = []
            for v in try iterate(value) where !seen.contains(where: { $0.equals(v) }) { seen.append(v) }
            return .list(seen)
        case "default", "d":
            let fallback = kw("default_value", 0) ?? .text("")
            let boolean = kw("boolean", 1)?.truthy ?? false
            if !value.isDefined || (boolean && !value.truthy) { return fallback }
            return value
        case "items":
            guard case let .dict(d) = value else { throw fail("items needs a dict") }
            return .list(d.map { .list([.text($0.0), $0.1]) })
        case "dictsort":
            guard case let .dict(d) = value else { throw fail("dictsort needs a dict") }
            return .list(d.sorted { $0.0.lowercased() < $1.0.lowercased() }.map { .list([.text($0.0), $0.1]) })
        case "selectattr", "rejectattr":
            guard let attributeName = args.first?.printed.string else { throw fail("\(name) needs an attribute name") }
            return .list(try iterate(value).filter { item in
                let v = try attribute(item, attributeName, preferItem: true)
                let passed = args.count > 1 ? try applyTest(args[1].printed.string, v, Array(args.dropFirst(2))) : v.truthy
                return passed == (name == "selectattr")
            })
        case "select", "reject":
            return .list(try iterate(value).filter { item in
                let passed = args.isEmpty ? item.truthy : try applyTest(args[0].printed.string, item, Array(args.dropFirst()))
                return passed == (name == "select")
            })
        case "map":
            if let attributeName = kwargs.first(where: { $0.0 == "attribute" })?.1.printed.string {
                let fallback = kwargs.first { $0.0 == "default" }?.1
                return .list(try iterate(value).map { item in
                    let v = try attribute(item, attributeName, preferItem: true)
                    return v.isDefined ? v : (fallback ?? v)
                })
            }
            guard let filterName = args.first?.printed.string else { throw fail("map needs a filter name or attribute=") }
            return .list(try iterate(value).map { try applyFilter(filterName, $0, Array(args.dropFirst()), []) })
        case "int":
            switch value {
            case let .int(i): return .int(i)
            case let .double(d): return .int(d.isFinite && abs(d) < 9.2e18 ? Int(d) : 0)
            case let .bool(b): return .int(b ? 1 : 0)
            case let .string(s): return .int(Int(s.string.trimmingCharacters(in: .whitespaces)) ?? (kw("default", 0).flatMap { if case let .int(i) = $0 { return i }; return nil } ?? 0))
            default: return .int(0)
            }
        case "float":
            if let n = value.numeric { return .double(n) }
            if case let .string(s) = value, let d = Double(s.string.trimmingCharacters(in: .whitespaces)) { return .double(d) }
            return .double(0)
        case "abs":
            switch value {
            case let .int(i):
                guard i != Int.min else { throw fail("abs overflows an integer") }
                return .int(abs(i))
            case let .double(d): return .double(abs(d))
            default: throw fail("abs needs a number")
            }
        case "round":
            guard let n = value.numeric else { throw fail("round needs a number") }
            var precision = 0
            if case let .int(p)? = kw("precision", 0) { precision = p }
            let scale = pow(10, Double(precision))
            return .double((n * scale).rounded(.toNearestOrEven) / scale)
        case "indent":
            var width = 4
            if case let .int(w)? = kw("width", 0) { width = min(max(0, w), 1_000) }
            let first = kw("first", 1)?.truthy ?? false, blank = kw("blank", 2)?.truthy ?? false
            let pad = String(repeating: " ", count: width)
            let text = value.printed.string
            try checkSize(text.utf8.count + width * (text.split(separator: "\n", omittingEmptySubsequences: false).count))
            return .string(value.printed.mapped { text in
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                return lines.enumerated().map { k, l in
                    (k == 0 && !first) || (l.isEmpty && !blank) ? String(l) : pad + l
                }.joined(separator: "\n")
            })
        case "wordcount": return .int(value.printed.string.split { $0.isWhitespace }.count)
        case "batch", "slice", "groupby", "sum", "min", "max", "sort", "attr", "pprint", "urlencode", "xmlattr", "filesizeformat", "truncate", "wordwrap", "format", "center", "striptags", "urlize", "random":
            throw fail("the filter '\(name)' is not supported in chat templates here")
        default:
            throw fail("no filter named '\(name)'")
        }
    }

    func applyTest(_ name: String, _ value: JinjaValue, _ args: [JinjaValue]) throws -> Bool {
        switch name {
        case "defined": return value.isDefined
        case "undefined": return !value.isDefined
        case "none": if case .none = value { return true }; return false
        case "string": if case .string = value { return true }; return false
        case "number": switch value { case .int, .double: return true; default: return false }
        case "integer": if case .int = value { return true }; return false
        case "float": if case .double = value { return true }; return false
        case "boolean": if case .bool = value { return true }; return false
        case "true": if case .bool(true) = value { return true }; return false
        case "false": if case .bool(false) = value { return true }; return false
        case "mapping": switch value { case .dict: return true; default: return false }
        case "sequence": switch value { case .list, .string, .dict: return true; default: return false }
        case "iterable": switch value { case .list, .string, .dict: return true; default: return false }
        case "callable": if case .function = value { return true }; return false
        case "odd", "even":
            guard case let .int(i) = value else { throw fail("'\(name)' needs an integer") }
            return (i % 2 != 0) == (name == "odd")
        case "divisibleby":
            guard case let .int(i) = value, case let .int(d)? = args.first, d != 0 else { throw fail("divisibleby needs integers") }
            return i.remainderReportingOverflow(dividingBy: d).partialValue == 0
        case "equalto", "eq", "==", "sameas":
            guard let other = args.first else { throw fail("'\(name)' needs a value to compare with") }
            return value.equals(other)
        case "ne", "!=":
            guard let other = args.first else { throw fail("'\(name)' needs a value to compare with") }
            return !value.equals(other)
        case "lt", "<", "gt", ">", "le", "<=", "ge", ">=":
            guard let other = args.first else { throw fail("'\(name)' needs a value to compare with") }
            let symbol = ["lt": "<", "gt": ">", "le": "<=", "ge": ">="][name] ?? name
            return try binary(symbol, value, other).truthy
        case "in":
            guard let other = args.first else { throw fail("'in' needs a container") }
            return try contains(other, value)
        case "lower": return value.printed.string == value.printed.string.lowercased()
        case "upper": return value.printed.string == value.printed.string.uppercased()
        default: throw fail("no test named '\(name)'")
        }
    }
}
