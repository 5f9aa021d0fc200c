/// The syntax tree of a chat template: Jinja2's statements and expressions as chat templates use
/// them (if/elif/else, for with loop variables, else, an inline filter and break/continue, set
/// including namespace attributes and blocks, macros, HF's `generation` blocks; filters, tests,
/// slices, calls and Python's operators with Jinja2's precedence).
indirect enum JinjaExpr {
    case literal(JinjaValue)
    case name(String)
    case list([JinjaExpr])
    case dict([(JinjaExpr, JinjaExpr)])
    case attribute(JinjaExpr, String)
    case item(JinjaExpr, JinjaExpr)
    case slice(JinjaExpr, JinjaExpr?, JinjaExpr?, JinjaExpr?)
    case call(JinjaExpr, [JinjaExpr], [(String, JinjaExpr)])
    case filter(JinjaExpr, String, [JinjaExpr], [(String, JinjaExpr)])
    case test(JinjaExpr, String, [JinjaExpr], negated: Bool)
    case unary(String, JinjaExpr)
    case binary(String, JinjaExpr, JinjaExpr)
    case conditional(JinjaExpr, condition: JinjaExpr, otherwise: JinjaExpr?)
}

indirect enum JinjaNode {
    enum SetTarget { case names([String]), attribute(String, String) }
    case text(String)
    case output(JinjaExpr, line: Int)
    case branches([(JinjaExpr, [JinjaNode])], otherwise: [JinjaNode], line: Int)
    case loop(targets: [String], sequence: JinjaExpr, filter: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode], line: Int)
    case set(SetTarget, JinjaExpr, line: Int)
    case setBlock(String, [JinjaNode], line: Int)
    case macro(String, parameters: [(String, JinjaExpr?)], body: [JinjaNode], line: Int)
    case breakLoop, continueLoop
}

/// Splits template text into text and tags with Jinja2's whitespace rules as transformers sets
/// them (`trim_blocks` and `lstrip_blocks` on; `-` strips all whitespace on its side, `+` keeps it).
struct JinjaLexer {
    enum Item {
        case text(String)
        /// `{{ ... }}` (isStatement false) or `{% ... %}`, with the expression tokens inside.
        case tag(isStatement: Bool, tokens: [JinjaToken], line: Int)
    }

    /// Tokens one tag may hold, and how deep brackets, `not` and unary signs may nest in it:
    /// far beyond real templates, and low enough that parsing and evaluating stay well inside the stack.
    static let maxTokensPerTag = 600
    static let maxNesting = 100

    static func items(_ source: String) throws -> [Item] {
        // Jinja2 reads \r\n and \r as \n, and drops one trailing newline (keep_trailing_newline=False).
        var normalised = source.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        if normalised.hasSuffix("\n") { normalised.removeLast() }
        let chars = Array(normalised)
        var raw: [(text: String, tag: (kind: Character, body: String, left: Character?, right: Character?, line: Int)?)] = []
        var i = 0, line = 1, text = ""
        while i < chars.count {
            if chars[i] == "{", i + 1 < chars.count, "{%#".contains(chars[i + 1]) {
                let kind = chars[i + 1], startLine = line
                var j = i + 2
                var left: Character?
                if j < chars.count, chars[j] == "-" || chars[j] == "+" { left = chars[j]; j += 1 }
                let closer: Character = kind == "{" ? "}" : (kind == "%" ? "%" : "#")
                var body = "", quote: Character?, closed = false
                var brackets = 0  // as Jinja2's lexer, a closer inside ( [ { does not end the tag
                while j < chars.count {
                    let c = chars[j]
                    if let q = quote {
                        body.append(c)
                        if c == "\\", j + 1 < chars.count { body.append(chars[j + 1]); j += 2; continue }
                        if c == q { quote = nil }
                    } else if kind != "#" && (c == "'" || c == "\"") {
                        quote = c; body.append(c)
                    } else if c == closer, j + 1 < chars.count, chars[j + 1] == "}", brackets == 0 || kind == "#" {
                        closed = true; break
                    } else {
                        if kind != "#" {
                            if "([{".contains(c) { brackets += 1 } else if ")]}".contains(c) { brackets = max(0, brackets - 1) }
                        }
                        body.append(c)
                    }
                    if c == "\n" { line += 1 }
                    j += 1
                }
                guard closed else { throw JinjaError.syntax(line: startLine, message: "a tag opened with '{\(kind)' is never closed") }
                var right: Character?
                if let last = body.last, last == "-" || last == "+" { right = last; body.removeLast() }
                raw.append((text, (kind, body, left, right, startLine)))
                text = ""
                i = j + 2
            } else {
                if chars[i] == "\n" { line += 1 }
                text.append(chars[i]); i += 1
            }
        }
        raw.append((text, nil))

        // Whitespace control, then tokens. A text starts a line at the template's start and
        // after a tag whose trailing whitespace control removed a newline (Jinja2's line_starting).
        var texts = raw.map(\.text)
        var startsLine = [Bool](repeating: false, count: raw.count)
        startsLine[0] = true
        for (k, entry) in raw.enumerated() {
            guard let tag = entry.tag else { continue }
            let isBlock = tag.kind != "{"
            if tag.left == "-" {
                while let c = texts[k].last, c.isWhitespace { texts[k].removeLast() }
            } else if isBlock && tag.left != "+" {
                // lstrip_blocks: spaces and tabs from the start of the tag's line
                let before = texts[k]
                let lastLine = before.split(separator: "\n", omittingEmptySubsequences: false).last ?? ""
                if lastLine.allSatisfy({ $0 == " " || $0 == "\t" }) && (before.contains("\n") || startsLine[k]) {
                    texts[k].removeLast(lastLine.count)
                }
            }
            if tag.right == "-" {
                let following = texts[k + 1]
                let dropped = following.prefix { $0.isWhitespace }
                texts[k + 1] = String(following.dropFirst(dropped.count))
                startsLine[k + 1] = dropped.last == "\n"
            } else if isBlock && tag.right != "+", texts[k + 1].hasPrefix("\n") {
                // trim_blocks: the first newline after a block tag
                texts[k + 1].removeFirst()
                startsLine[k + 1] = true
            }
        }
        var items: [Item] = []
        for (k, entry) in raw.enumerated() {
            if !texts[k].isEmpty { items.append(.text(texts[k])) }
            guard let tag = entry.tag, tag.kind != "#" else { continue }
            let tokens = try JinjaToken.tokenize(tag.body, line: tag.line)
            guard tokens.count <= maxTokensPerTag else {
                throw JinjaError.syntax(line: tag.line, message: "a tag of \(tokens.count) tokens (at most \(maxTokensPerTag))")
            }
            items.append(.tag(isStatement: tag.kind == "%", tokens: tokens, line: tag.line))
        }
        return items
    }
}

enum JinjaToken: Equatable {
    case name(String)
    case string(String)
    case int(Int)
    case float(Double)
    case op(String)

    static let operators = ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=",
                            "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"]

    static func tokenize(_ body: String, line: Int) throws -> [JinjaToken] {
        let chars = Array(body)
        var tokens: [JinjaToken] = []
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            if c.isLetter || c == "_" {
                var name = ""
                while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "_" { name.append(chars[i]); i += 1 }
                tokens.append(.name(name)); continue
            }
            if c.isASCII && c.isNumber {
                var digits = "", isFloat = false
                while i < chars.count, (chars[i].isASCII && chars[i].isNumber) || chars[i] == "_"
                    || (chars[i] == "." && !isFloat && i + 1 < chars.count && chars[i + 1].isASCII && chars[i + 1].isNumber)
                    || ((chars[i] == "e" || chars[i] == "E") && !digits.isEmpty) {
                    if chars[i] == "." || chars[i] == "e" || chars[i] == "E" { isFloat = true }
                    if (chars[i] == "e" || chars[i] == "E"), i + 1 < chars.count, chars[i + 1] == "-" || chars[i + 1] == "+" {
                        digits.append(chars[i]); i += 1
                    }
                    if chars[i] != "_" { digits.append(chars[i]) }
                    i += 1
                }
                if isFloat, let d = Double(digits) { tokens.append(.float(d)) }
                else if let n = Int(digits) { tokens.append(.int(n)) }
                else { throw JinjaError.syntax(line: line, message: "'\(digits)' is not a number") }
                continue
            }
            if c == "'" || c == "\"" {
                var value = "", closed = false
                i += 1
                while i < chars.count {
                    let d = chars[i]
                    if d == c { closed = true; i += 1; break }
                    if d == "\\", i + 1 < chars.count {
                        let e = chars[i + 1]
                        i += 2
                        switch e {
                        case "n": value.append("\n")
                        case "t": value.append("\t")
                        case "r": value.append("\r")
                        case "0": value.append("\0")
                        case "\\", "'", "\"": value.append(e)
                        case "\n": break
                        case "x", "u", "U":
                            let width = e == "x" ? 2 : (e == "u" ? 4 : 8)
                            let hex = String(chars[i..<min(chars.count, i + width)])
                            guard hex.count == width, let code = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(code) else {
                                throw JinjaError.syntax(line: line, message: "a bad \\\(e) escape in a string")
                            }
                            value.unicodeScalars.append(scalar); i += width
                        default: value.append("\\"); value.append(e)
                        }
                        continue
                    }
                    value.append(d); i += 1
                }
                guard closed else { throw JinjaError.syntax(line: line, message: "a string is never closed") }
                tokens.append(.string(value)); continue
            }
            guard let op = operators.first(where: { op in
                op.count <= chars.count - i && String(chars[i..<(i + op.count)]) == op
            }) else { throw JinjaError.syntax(line: line, message: "unexpected character '\(c)'") }
            tokens.append(.op(op)); i += op.count
        }
        return tokens
    }
}

/// Parses tokens into the syntax tree (Jinja2's grammar and precedence for the subset).
struct JinjaParser {
    private var items: [JinjaLexer.Item]
    private var position = 0
    private var depth = 0

    init(source: String) throws { items = try JinjaLexer.items(source) }

    mutating func parseTemplate() throws -> [JinjaNode] {
        let (nodes, end) = try parseBody(until: [])
        if let end { throw JinjaError.syntax(line: end.line, message: "'\(end.keyword)' without a matching opening tag") }
        return nodes
    }

    /// Nodes up to one of the `until` keywords (returned with that tag's expression parser).
    private mutating func parseBody(until: Set<String>) throws -> ([JinjaNode], (keyword: String, line: Int, tokens: TokenStream)?) {
        depth += 1
        defer { depth -= 1 }
        guard depth <= JinjaLexer.maxNesting else {
            throw JinjaError.syntax(line: 0, message: "blocks nest deeper than \(JinjaLexer.maxNesting)")
        }
        var nodes: [JinjaNode] = []
        while position < items.count {
            let item = items[position]; position += 1
            switch item {
            case let .text(t): nodes.append(.text(t))
            case let .tag(isStatement, tokens, line):
                var stream = TokenStream(tokens: tokens, line: line)
                if !isStatement {
                    let e = try stream.expression()
                    try stream.expectEnd()
                    nodes.append(.output(e, line: line)); continue
                }
                guard case let .name(keyword)? = stream.next() else { throw JinjaError.syntax(line: line, message: "a statement tag without a statement") }
                if until.contains(keyword) { return (nodes, (keyword, line, stream)) }
                switch keyword {
                case "if": nodes.append(try parseIf(&stream, line: line))
                case "for": nodes.append(try parseFor(&stream, line: line))
                case "set": nodes.append(try parseSet(&stream, line: line))
                case "macro": nodes.append(try parseMacro(&stream, line: line))
                case "break": try stream.expectEnd(); nodes.append(.breakLoop)
                case "continue": try stream.expectEnd(); nodes.append(.continueLoop)
                case "generation":
                    // transformers' assistant-mask marker: renders its body unchanged
                    try stream.expectEnd()
                    let (body, end) = try parseBody(until: ["endgeneration"])
                    guard end != nil else { throw JinjaError.syntax(line: line, message: "'generation' is never closed by 'endgeneration'") }
                    nodes += body
                case "endif", "endfor", "endset", "endmacro", "endgeneration", "elif", "else":
                    throw JinjaError.syntax(line: line, message: "'\(keyword)' without a matching opening tag")
                default:
                    throw JinjaError.syntax(line: line, message: "the statement '\(keyword)' is not supported (supported: if, for, set, macro, break, continue, generation)")
                }
            }
        }
        return (nodes, nil)
    }

    private mutating func parseIf(_ stream: inout TokenStream, line: Int) throws -> JinjaNode {
        var branches: [(JinjaExpr, [JinjaNode])] = []
        var condition = try stream.expression()
        try stream.expectEnd()
        while true {
            let (body, end) = try parseBody(until: ["elif", "else", "endif"])
            guard var end else { throw JinjaError.syntax(line: line, message: "'if' is never closed by 'endif'") }
            branches.append((condition, body))
            switch end.keyword {
            case "elif":
                condition = try end.tokens.expression(); try end.tokens.expectEnd()
            case "else":
                try end.tokens.expectEnd()
                let (otherwise, close) = try parseBody(until: ["endif"])
                guard var close else { throw JinjaError.syntax(line: line, message: "'if' is never closed by 'endif'") }
                try close.tokens.expectEnd()
                return .branches(branches, otherwise: otherwise, line: line)
            default:
                try end.tokens.expectEnd()
                return .branches(branches, otherwise: [], line: line)
            }
        }
    }

    private mutating func parseFor(_ stream: inout TokenStream, line: Int) throws -> JinjaNode {
        var targets = [try stream.name()]
        while stream.peek() == .op(",") { _ = stream.next(); targets.append(try stream.name()) }
        guard stream.next() == .name("in") else { throw JinjaError.syntax(line: line, message: "expected 'in' in a for loop") }
        let sequence = try stream.ternaryFree()
        var filter: JinjaExpr?
        if stream.peek() == .name("if") { _ = stream.next(); filter = try stream.ternaryFree() }
        if stream.peek() == .name("recursive") { throw JinjaError.syntax(line: line, message: "recursive loops are not supported") }
        try stream.expectEnd()
        let (body, end) = try parseBody(until: ["else", "endfor"])
        guard var end else { throw JinjaError.syntax(line: line, message: "'for' is never closed by 'endfor'") }
        try end.tokens.expectEnd()
        var otherwise: [JinjaNode] = []
        if end.keyword == "else" {
            let (elseBody, close) = try parseBody(until: ["endfor"])
            guard var close else { throw JinjaError.syntax(line: line, message: "'for' is never closed by 'endfor'") }
            try close.tokens.expectEnd()
            otherwise = elseBody
        }
        return .loop(targets: targets, sequence: sequence, filter: filter, body: body, otherwise: otherwise, line: line)
    }

    private mutating func parseSet(_ stream: inout TokenStream, line: Int) throws -> JinjaNode {
        let first = try stream.name()
        if stream.peek() == .op(".") {
            _ = stream.next()
            let attribute = try stream.name()
            guard stream.next() == .op("=") else { throw JinjaError.syntax(line: line, message: "expected '=' in set") }
            let value = try stream.expression(); try stream.expectEnd()
            return .set(.attribute(first, attribute), value, line: line)
        }
        var names = [first]
        while stream.peek() == .op(",") { _ = stream.next(); names.append(try stream.name()) }
        if stream.atEnd && names.count == 1 {
            let (body, end) = try parseBody(until: ["endset"])
            guard var end else { throw JinjaError.syntax(line: line, message: "'set' block is never closed by 'endset'") }
            try end.tokens.expectEnd()
            return .setBlock(first, body, line: line)
        }
        guard stream.next() == .op("=") else { throw JinjaError.syntax(line: line, message: "expected '=' in set") }
        let value = try stream.expression(); try stream.expectEnd()
        return .set(.names(names), value, line: line)
    }

    private mutating func parseMacro(_ stream: inout TokenStream, line: Int) throws -> JinjaNode {
        let name = try stream.name()
        guard stream.next() == .op("(") else { throw JinjaError.syntax(line: line, message: "expected '(' after the macro name") }
        var parameters: [(String, JinjaExpr?)] = []
        while stream.peek() != .op(")") {
            let p = try stream.name()
            var value: JinjaExpr?
            if stream.peek() == .op("=") { _ = stream.next(); value = try stream.expression() }
            parameters.append((p, value))
            if stream.peek() == .op(",") { _ = stream.next() } else { break }
        }
        guard stream.next() == .op(")") else { throw JinjaError.syntax(line: line, message: "expected ')' after the macro's parameters") }
        try stream.expectEnd()
        let (body, end) = try parseBody(until: ["endmacro"])
        guard var end else { throw JinjaError.syntax(line: line, message: "'macro' is never closed by 'endmacro'") }
        if case .name? = end.tokens.peek() { _ = end.tokens.next() }
        try end.tokens.expectEnd()
        return .macro(name, parameters: parameters, body: body, line: line)
    }
}

/// Expression parsing over one tag's tokens, after Jinja2's parser: conditional, or, and, not,
/// comparisons, + and -, ~, * / // %, **, unary, then postfix (attributes, items, calls,
/// filters and tests).
struct TokenStream {
    var tokens: [JinjaToken]
    let line: Int
    var index = 0
    private var depth = 0

    /// Counts one level of nesting (brackets, `not`, unary signs, conditional branches).
    private mutating func nest() throws {
        depth += 1
        guard depth <= JinjaLexer.maxNesting else { throw error("an expression nests deeper than \(JinjaLexer.maxNesting)") }
    }

    init(tokens: [JinjaToken], line: Int) { self.tokens = tokens; self.line = line }

    var atEnd: Bool { index >= tokens.count }
    func peek(_ offset: Int = 0) -> JinjaToken? { index + offset < tokens.count ? tokens[index + offset] : nil }
    mutating func next() -> JinjaToken? { defer { index += 1 }; return peek() }

    func error(_ message: String) -> JinjaError { .syntax(line: line, message: message) }

    mutating func expectEnd() throws {
        if let t = peek() { throw error("unexpected \(Self.describe(t)) at the end of the tag") }
    }
    mutating func expect(_ op: String) throws {
        guard next() == .op(op) else { throw error("expected '\(op)'") }
    }
    mutating func name() throws -> String {
        guard case let .name(n)? = next() else { throw error("expected a name") }
        return n
    }
    static func describe(_ t: JinjaToken) -> String {
        switch t {
        case let .name(n): return "'\(n)'"
        case let .string(s): return "string '\(s)'"
        case let .int(i): return "\(i)"
        case let .float(d): return "\(d)"
        case let .op(o): return "'\(o)'"
        }
    }

    mutating func expression() throws -> JinjaExpr {
        try nest()
        defer { depth -= 1 }
        let value = try orExpression()
        guard peek() == .name("if") else { return value }
        _ = next()
        let condition = try orExpression()
        var otherwise: JinjaExpr?
        if peek() == .name("else") { _ = next(); otherwise = try expression() }
        return .conditional(value, condition: condition, otherwise: otherwise)
    }

    /// An expression without a trailing `if` (a for loop's sequence, before its filter).
    mutating func ternaryFree() throws -> JinjaExpr { try orExpression() }

    private mutating func orExpression() throws -> JinjaExpr {
        var left = try andExpression()
        while peek() == .name("or") { _ = next(); left = .binary("or", left, try andExpression()) }
        return left
    }
    private mutating func andExpression() throws -> JinjaExpr {
        var left = try notExpression()
        while peek() == .name("and") { _ = next(); left = .binary("and", left, try notExpression()) }
        return left
    }
    private mutating func notExpression() throws -> JinjaExpr {
        if peek() == .name("not") {
            _ = next()
            try nest()
            defer { depth -= 1 }
            return .unary("not", try notExpression())
        }
        return try comparison()
    }
    private mutating func comparison() throws -> JinjaExpr {
        let first = try additive()
        var operands = [first], ops: [String] = []
        while true {
            if case let .op(o)? = peek(), ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                _ = next(); ops.append(o)
            } else if peek() == .name("in") {
                _ = next(); ops.append("in")
            } else if peek() == .name("not"), peek(1) == .name("in") {
                index += 2; ops.append("not in")
            } else { break }
            operands.append(try additive())
        }
        guard !ops.isEmpty else { return first }
        // a < b < c means a < b and b < c
        var result: JinjaExpr = .binary(ops[0], operands[0], operands[1])
        for k in 1..<ops.count { result = .binary("and", result, .binary(ops[k], operands[k], operands[k + 1])) }
        return result
    }
    private mutating func additive() throws -> JinjaExpr {
        var left = try concatenation()
        while case let .op(o)? = peek(), o == "+" || o == "-" { _ = next(); left = .binary(o, left, try concatenation()) }
        return left
    }
    private mutating func concatenation() throws -> JinjaExpr {
        var left = try multiplicative()
        while peek() == .op("~") { _ = next(); left = .binary("~", left, try multiplicative()) }
        return left
    }
    private mutating func multiplicative() throws -> JinjaExpr {
        var left = try power()
        while case let .op(o)? = peek(), ["*", "/", "//", "%"].contains(o) { _ = next(); left = .binary(o, left, try power()) }
        return left
    }
    private mutating func power() throws -> JinjaExpr {
        var left = try unary()
        while peek() == .op("**") { _ = next(); left = .binary("**", left, try unary()) }
        return left
    }
    private mutating func unary(withFilters: Bool = true) throws -> JinjaExpr {
        if case let .op(o)? = peek(), o == "-" || o == "+" {
            _ = next()
            try nest()
            defer { depth -= 1 }
            let operand = try unary(withFilters: false)
            return withFilters ? try filters(.unary(o, operand)) : .unary(o, operand)
        }
        let node = try postfix(try primary())
        return withFilters ? try filters(node) : node
    }

    private mutating func primary() throws -> JinjaExpr {
        guard let t = next() else { throw error("an expression is missing") }
        switch t {
        case let .string(s):
            var text = s
            while case let .string(more)? = peek() { _ = next(); text += more }  // adjacent literals join
            return .literal(.text(text))
        case let .int(i): return .literal(.int(i))
        case let .float(d): return .literal(.double(d))
        case let .name(n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .op("("):
            if peek() == .op(")") { _ = next(); return .list([]) }
            let first = try expression()
            if peek() == .op(",") {
                var items = [first]
                while peek() == .op(",") { _ = next(); if peek() == .op(")") { break }; items.append(try expression()) }
                try expect(")")
                return .list(items)
            }
            try expect(")")
            return first
        case .op("["):
            var items: [JinjaExpr] = []
            while peek() != .op("]") {
                items.append(try expression())
                if peek() == .op(",") { _ = next() } else { break }
            }
            try expect("]")
            return .list(items)
        case .op("{"):
            var pairs: [(JinjaExpr, JinjaExpr)] = []
            while peek() != .op("}") {
                let key = try expression()
                try expect(":")
                pairs.append((key, try expression()))
                if peek() == .op(",") { _ = next() } else { break }
            }
            try expect("}")
            return .dict(pairs)
        default:
            throw error("unexpected \(Self.describe(t))")
        }
    }

    private mutating func postfix(_ start: JinjaExpr) throws -> JinjaExpr {
        var node = start
        while true {
            if peek() == .op(".") {
                _ = next()
                switch next() {
                case let .name(n)?: node = .attribute(node, n)
                case let .int(i)?: node = .item(node, .literal(.int(i)))
                default: throw error("expected an attribute name after '.'")
                }
            } else if peek() == .op("[") {
                _ = next()
                node = try subscriptOrSlice(node)
            } else if peek() == .op("(") {
                _ = next()
                let (args, kwargs) = try callArguments()
                node = .call(node, args, kwargs)
            } else {
                return node
            }
        }
    }

    private mutating func subscriptOrSlice(_ target: JinjaExpr) throws -> JinjaExpr {
        var parts: [JinjaExpr?] = [nil]
        var isSlice = false
        while peek() != .op("]") {
            if peek() == .op(":") {
                _ = next(); isSlice = true; parts.append(nil)
                guard parts.count <= 3 else { throw error("a slice takes at most three parts") }
            } else {
                guard parts[parts.count - 1] == nil else { throw error("expected ':' or ']'") }
                parts[parts.count - 1] = try expression()
            }
        }
        try expect("]")
        if !isSlice {
            guard let key = parts[0] else { throw error("an empty subscript") }
            return .item(target, key)
        }
        while parts.count < 3 { parts.append(nil) }
        return .slice(target, parts[0], parts[1], parts[2])
    }

    private mutating func callArguments() throws -> ([JinjaExpr], [(String, JinjaExpr)]) {
        var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
        while peek() != .op(")") {
            if case let .name(n)? = peek(), peek(1) == .op("=") {
                index += 2
                kwargs.append((n, try expression()))
            } else {
                args.append(try expression())
            }
            if peek() == .op(",") { _ = next() } else { break }
        }
        try expect(")")
        return (args, kwargs)
    }

    private mutating func filters(_ start: JinjaExpr) throws -> JinjaExpr {
        var node = start
        while true {
            if peek() == .op("|") {
                _ = next()
                var name = try name()
                while peek() == .op(".") { _ = next(); name += "." + (try self.name()) }
                var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
                if peek() == .op("(") { _ = next(); (args, kwargs) = try callArguments() }
                node = .filter(node, name, args, kwargs)
            } else if peek() == .name("is") {
                _ = next()
                var negated = false
                if peek() == .name("not") { _ = next(); negated = true }
                let test: String
                switch next() {
                case let .name(n)?: test = n
                case let .op(o)? where ["==", "!=", "<", ">", "<=", ">="].contains(o): test = o
                default: throw error("expected a test name after 'is'")
                }
                var args: [JinjaExpr] = []
                if peek() == .op("(") {
                    _ = next(); args = try callArguments().0
                } else if let t = peek(), Self.startsTestArgument(t) {
                    args = [try postfix(try primary())]
                }
                node = .test(node, test, args, negated: negated)
            } else {
                return node
            }
        }
    }

    /// `x is divisibleby 3`: a test may take one argument without parentheses.
    private static func startsTestArgument(_ t: JinjaToken) -> Bool {
        switch t {
        case .string, .int, .float: return true
        case let .name(n): return !["and", "or", "else", "if", "in", "not", "is", "recursive"].contains(n)
        case .op("["), .op("{"): return true
        default: return false
        }
    }
}
