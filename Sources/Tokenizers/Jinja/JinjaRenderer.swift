import Foundation

/// A parsed Jinja template, rendered with transformers' settings for chat templates
/// (`trim_blocks`, `lstrip_blocks`, no autoescaping, `raise_exception`, `namespace`, a
/// `tojson` that keeps non-ASCII). `strftime_now` is deliberately absent: a rendering must not
/// change from one day to the next (Llama 3's template then uses its fixed date).
///
/// Usage: `let text = try JinjaTemplate(source: jinja).render(["messages": .list([...])]).string`
struct JinjaTemplate {
    let nodes: [JinjaNode]

    init(source: String) throws {
        var parser = try JinjaParser(source: source)
        nodes = try parser.parseTemplate()
    }

    func render(_ variables: [String: JinjaValue], budget: JinjaStepBudget = JinjaStepBudget()) throws -> JinjaText {
        let renderer = JinjaRenderer(globals: variables, budget: budget)
        _ = try renderer.execute(nodes)
        return renderer.buffers[0]
    }
}

/// Steps counted across several renderings (a chat template renders one conversation once per
/// assistant turn to find the turns), so that their total is bounded, not each one alone.
final class JinjaStepBudget {
    var steps = 0
    init() {}
}

private enum Flow { case normal, breakLoop, continueLoop }

/// Bounds that keep a hostile template from running for ever or filling memory.
private let maxSteps = 1_000_000
private let maxOutput = 64 << 20

final class JinjaRenderer {
    var scopes: [[String: JinjaValue]]
    var buffers: [JinjaText] = [JinjaText()]
    /// Bytes written to each buffer, kept as they grow (summing the chunks each time is quadratic).
    var bufferSizes: [Int] = [0]
    /// Steps shared by every rendering of one chat-template call (see `JinjaStepBudget`).
    let budget: JinjaStepBudget
    var line = 0
    var depth = 0

    init(globals: [String: JinjaValue], budget: JinjaStepBudget = JinjaStepBudget()) {
        self.budget = budget
        var builtins: [String: JinjaValue] = [:]
        builtins["raise_exception"] = .function("raise_exception") { args, _ in
            throw JinjaError.raised(args.first?.printed.string ?? "")
        }
        builtins["namespace"] = .function("namespace") { args, kwargs in
            var attributes: [(String, JinjaValue)] = []
            if case let .dict(d)? = args.first { attributes = d }
            for (k, v) in kwargs { if let i = attributes.firstIndex(where: { $0.0 == k }) { attributes[i].1 = v } else { attributes.append((k, v)) } }
            return .namespace(JinjaNamespace(attributes))
        }
        builtins["dict"] = .function("dict") { _, kwargs in .dict(kwargs) }
        builtins["range"] = .function("range") { args, _ in
            let n = try args.map { v -> Int in
                guard case let .int(i) = v else { throw JinjaError.render(line: 0, message: "range() takes integers") }
                return i
            }
            let (start, stop, step) = n.count == 1 ? (0, n[0], 1) : (n.count >= 2 ? (n[0], n[1], n.count > 2 ? n[2] : 1) : (0, 0, 1))
            guard step != 0 else { throw JinjaError.render(line: 0, message: "range() step must not be zero") }
            let values = Array(stride(from: start, to: stop, by: step).prefix(1_000_000))
            return .list(values.map(JinjaValue.int))
        }
        scopes = [builtins, globals]
    }

    func fail(_ message: String) -> JinjaError { .render(line: line, message: message) }

    func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() { if let v = scope[name] { return v } }
        return .undefined(name)
    }

    func emit(_ text: JinjaText) throws {
        let size = bufferSizes[bufferSizes.count - 1] + text.chunks.reduce(0) { $0 + $1.text.utf8.count }
        try checkSize(size)
        buffers[buffers.count - 1].append(text)
        bufferSizes[bufferSizes.count - 1] = size
    }

    /// Refuses a string, list or output larger than the rendering may grow.
    func checkSize(_ bytes: Int) throws {
        if bytes > maxOutput { throw fail("the rendering grew beyond \(maxOutput >> 20) MiB") }
    }

    func pushBuffer() { buffers.append(JinjaText()); bufferSizes.append(0) }
    func popBuffer() -> JinjaText { bufferSizes.removeLast(); return buffers.removeLast() }

    func tick() throws {
        budget.steps += 1
        if budget.steps > maxSteps { throw fail("the template ran for more than \(maxSteps) steps") }
    }

    // MARK: Statements

    fileprivate func execute(_ nodes: [JinjaNode]) throws -> Flow {
        for node in nodes {
            try tick()
            switch node {
            case let .text(t): try emit(JinjaText(t))
            case let .output(e, l):
                line = l
                try emit(try evaluate(e).printed)
            case let .branches(branches, otherwise, l):
                line = l
                var taken = false
                for (condition, body) in branches where try evaluate(condition).truthy {
                    taken = true
                    let flow = try execute(body)
                    if flow != .normal { return flow }
                    break
                }
                if !taken {
                    let flow = try execute(otherwise)
                    if flow != .normal { return flow }
                }
            case let .loop(targets, sequence, filter, body, otherwise, l):
                line = l
                try runLoop(targets: targets, sequence: try evaluate(sequence), filter: filter, body: body, otherwise: otherwise)
            case let .set(target, e, l):
                line = l
                let value = try evaluate(e)
                switch target {
                case let .names(names):
                    if names.count == 1 { scopes[scopes.count - 1][names[0]] = value } else {
                        let items = try iterate(value)
                        guard items.count == names.count else { throw fail("cannot unpack \(items.count) values into \(names.count) names") }
                        for (n, v) in zip(names, items) { scopes[scopes.count - 1][n] = v }
                    }
                case let .attribute(object, attribute):
                    guard case let .namespace(ns) = lookup(object) else { throw fail("cannot set an attribute of '\(object)', which is not a namespace") }
                    ns[attribute] = value
                }
            case let .setBlock(name, body, l):
                line = l
                pushBuffer()
                _ = try execute(body)
                scopes[scopes.count - 1][name] = .string(popBuffer())
            case let .macro(name, parameters, body, _):
                scopes[scopes.count - 1][name] = .function(name) { [unowned self] args, kwargs in
                    try self.callMacro(name: name, parameters: parameters, body: body, args: args, kwargs: kwargs)
                }
            case .breakLoop: return .breakLoop
            case .continueLoop: return .continueLoop
            }
        }
        return .normal
    }

    private func callMacro(name: String, parameters: [(String, JinjaExpr?)], body: [JinjaNode], args: [JinjaValue], kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        depth += 1
        defer { depth -= 1 }
        guard depth < 64 else { throw fail("macro '\(name)' nests deeper than 64 calls") }
        var scope: [String: JinjaValue] = [:]
        for (k, (p, defaultValue)) in parameters.enumerated() {
            if k < args.count { scope[p] = args[k] }
            else if let kw = kwargs.first(where: { $0.0 == p }) { scope[p] = kw.1 }
            else if let defaultValue { scope[p] = try evaluate(defaultValue) }
            else { scope[p] = .undefined(p) }
        }
        scopes.append(scope)
        pushBuffer()
        defer { scopes.removeLast() }
        _ = try execute(body)
        return .string(popBuffer())
    }

    private func runLoop(targets: [String], sequence: JinjaValue, filter: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode]) throws {
        var items = try iterate(sequence)
        func bind(_ item: JinjaValue, into scope: inout [String: JinjaValue]) throws {
            if targets.count == 1 { scope[targets[0]] = item; return }
            let parts = try iterate(item)
            guard parts.count == targets.count else { throw fail("cannot unpack \(parts.count) values into \(targets.count) loop variables") }
            for (n, v) in zip(targets, parts) { scope[n] = v }
        }
        if let filter {
            items = try items.filter { item in
                var scope: [String: JinjaValue] = [:]
                try bind(item, into: &scope)
                scopes.append(scope)
                defer { scopes.removeLast() }
                return try evaluate(filter).truthy
            }
        }
        if items.isEmpty { _ = try execute(otherwise); return }
        for (k, item) in items.enumerated() {
            try tick()
            var scope: [String: JinjaValue] = [:]
            try bind(item, into: &scope)
            let n = items.count
            scope["loop"] = .dict([
                ("index", .int(k + 1)), ("index0", .int(k)), ("revindex", .int(n - k)), ("revindex0", .int(n - k - 1)),
                ("first", .bool(k == 0)), ("last", .bool(k == n - 1)), ("length", .int(n)),
                ("previtem", k > 0 ? items[k - 1] : .undefined("previtem")),
                ("nextitem", k + 1 < n ? items[k + 1] : .undefined("nextitem")),
                ("cycle", .function("cycle") { args, _ in args.isEmpty ? .undefined("cycle") : args[k % args.count] }),
            ])
            scopes.append(scope)
            let flow = try execute(body)
            scopes.removeLast()
            if flow == .breakLoop { break }
        }
    }

    func iterate(_ value: JinjaValue) throws -> [JinjaValue] {
        switch value {
        case .undefined: return []
        case let .list(l): return l
        case let .dict(d): return d.map { .text($0.0) }
        case let .string(s): return s.scalars.map { .string(JinjaText(String($0), isData: s.containsData)) }
        default: throw fail("a \(value.typeName) cannot be iterated")
        }
    }

    // MARK: Expressions

    func evaluate(_ e: JinjaExpr) throws -> JinjaValue {
        try tick()
        switch e {
        case let .literal(v): return v
        case let .name(n): return lookup(n)
        case let .list(items):
            let value = JinjaValue.list(try items.map(evaluate))
            guard value.depth() <= JinjaValue.maxDepth else { throw fail("lists and dicts nest deeper than \(JinjaValue.maxDepth)") }
            return value
        case let .dict(pairs):
            var d: [(String, JinjaValue)] = []
            for (k, v) in pairs {
                let key = try evaluate(k)
                guard case let .string(s) = key else { throw fail("dict keys must be strings here, not \(key.typeName)") }
                let value = try evaluate(v)
                if let i = d.firstIndex(where: { $0.0 == s.string }) { d[i].1 = value } else { d.append((s.string, value)) }
            }
            guard JinjaValue.dict(d).depth() <= JinjaValue.maxDepth else { throw fail("lists and dicts nest deeper than \(JinjaValue.maxDepth)") }
            return .dict(d)
        case let .attribute(target, name):
            return try attribute(try evaluate(target), name, preferItem: false)
        case let .item(target, key):
            let object = try evaluate(target), k = try evaluate(key)
            if case let .string(s) = k { return try attribute(object, s.string, preferItem: true) }
            return try item(object, k)
        case let .slice(target, start, stop, step):
            return try slice(try evaluate(target), try start.map(evaluate), try stop.map(evaluate), try step.map(evaluate))
        case let .call(callee, args, kwargs):
            let f = try evaluate(callee)
            guard case let .function(_, body) = f else {
                if case let .undefined(name) = f { throw fail("'\(name)' is undefined and cannot be called") }
                throw fail("a \(f.typeName) cannot be called")
            }
            return try body(try args.map(evaluate), try kwargs.map { ($0.0, try evaluate($0.1)) })
        case let .filter(target, name, args, kwargs):
            return try applyFilter(name, try evaluate(target), try args.map(evaluate), try kwargs.map { ($0.0, try evaluate($0.1)) })
        case let .test(target, name, args, negated):
            let result = try applyTest(name, try evaluate(target), try args.map(evaluate))
            return .bool(result != negated)
        case let .unary(op, operand):
            let v = try evaluate(operand)
            switch op {
            case "not": return .bool(!v.truthy)
            case "-":
                switch v {
                case let .int(i):
                    guard i != Int.min else { throw fail("negating \(i) overflows an integer") }
                    return .int(-i)
                case let .double(d): return .double(-d)
                case let .bool(b): return .int(b ? -1 : 0)
                default: throw fail("cannot negate a \(v.typeName)")
                }
            default: return v
            }
        case let .binary(op, l, r):
            if op == "and" { let a = try evaluate(l); return a.truthy ? try evaluate(r) : a }
            if op == "or" { let a = try evaluate(l); return a.truthy ? a : try evaluate(r) }
            return try binary(op, try evaluate(l), try evaluate(r))
        case let .conditional(value, condition, otherwise):
            if try evaluate(condition).truthy { return try evaluate(value) }
            return try otherwise.map(evaluate) ?? .undefined("conditional")
        }
    }

    /// `a.b` and `a['b']`: dict items, namespace attributes, loop variables and methods.
    func attribute(_ object: JinjaValue, _ name: String, preferItem: Bool) throws -> JinjaValue {
        switch object {
        case let .undefined(n): throw fail("'\(n)' is undefined (looking up '\(name)')")
        case .none: throw fail("'None' has no attribute '\(name)'")
        case let .dict(d):
            if preferItem || !["items", "keys", "values", "get"].contains(name) {
                if let v = d.first(where: { $0.0 == name })?.1 { return v }
            }
            if let m = try method(object, name) { return m }
            return .undefined(name)
        case let .namespace(ns): return ns[name] ?? .undefined(name)
        default:
            if let m = try method(object, name) { return m }
            return .undefined(name)
        }
    }

    func item(_ object: JinjaValue, _ key: JinjaValue) throws -> JinjaValue {
        switch (object, key) {
        case let (.undefined(n), _): throw fail("'\(n)' is undefined (looking up an item)")
        case let (.list(l), .int(i)):
            let k = i < 0 ? l.count + i : i
            return k >= 0 && k < l.count ? l[k] : .undefined("list object has no element \(i)")
        case let (.string(s), .int(i)):
            let chars = s.scalars
            let k = i < 0 ? chars.count + i : i
            return k >= 0 && k < chars.count ? .string(JinjaText(String(chars[k]), isData: s.containsData)) : .undefined("string index \(i)")
        default:
            return .undefined("item")
        }
    }

    func slice(_ object: JinjaValue, _ start: JinjaValue?, _ stop: JinjaValue?, _ step: JinjaValue?) throws -> JinjaValue {
        func int(_ v: JinjaValue?) throws -> Int? {
            switch v {
            case nil, .none?: return nil
            case let .int(i)?: return i
            default: throw fail("slice indices must be integers")
            }
        }
        let stepValue = try int(step) ?? 1
        guard stepValue != 0 else { throw fail("slice step cannot be zero") }
        func indices(_ count: Int) throws -> [Int] {
            func clamp(_ v: Int?, _ defaultValue: Int) -> Int {
                guard var v else { return defaultValue }
                if v < 0 { v += count }
                return stepValue > 0 ? min(max(v, 0), count) : min(max(v, -1), count - 1)
            }
            let from = clamp(try int(start), stepValue > 0 ? 0 : count - 1)
            let to = clamp(try int(stop), stepValue > 0 ? count : -1)
            return Array(stride(from: from, to: to, by: stepValue))
        }
        switch object {
        case let .list(l): return .list(try indices(l.count).map { l[$0] })
        case let .string(s):
            let chars = s.scalars
            var view = String.UnicodeScalarView()
            for k in try indices(chars.count) { view.append(chars[k]) }
            return .string(JinjaText(String(view), isData: s.containsData))
        case let .undefined(n): throw fail("'\(n)' is undefined (slicing it)")
        default: throw fail("a \(object.typeName) cannot be sliced")
        }
    }

    func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        switch op {
        case "==": return .bool(a.equals(b))
        case "!=": return .bool(!a.equals(b))
        case "in": return .bool(try contains(b, a))
        case "not in": return .bool(!(try contains(b, a)))
        case "~":
            let x = a.printed, y = b.printed
            try checkSize(x.string.utf8.count + y.string.utf8.count)
            return .string(x + y)
        case "<", ">", "<=", ">=":
            let order: Int
            if case let .string(x) = a, case let .string(y) = b {
                order = x.string == y.string ? 0 : (Array(x.string.unicodeScalars.map(\.value)).lexicographicallyPrecedes(y.string.unicodeScalars.map(\.value)) ? -1 : 1)
            } else if let x = a.numeric, let y = b.numeric {
                order = x == y ? 0 : (x < y ? -1 : 1)
            } else { throw fail("cannot compare a \(a.typeName) with a \(b.typeName)") }
            switch op {
            case "<": return .bool(order < 0)
            case ">": return .bool(order > 0)
            case "<=": return .bool(order <= 0)
            default: return .bool(order >= 0)
            }
        default: break
        }
        if case .undefined(let n) = a { throw fail("'\(n)' is undefined (used with '\(op)')") }
        if case .undefined(let n) = b { throw fail("'\(n)' is undefined (used with '\(op)')") }
        switch (op, a, b) {
        case let ("+", .string(x), .string(y)):
            try checkSize(x.string.utf8.count + y.string.utf8.count)
            return .string(x + y)
        case let ("+", .list(x), .list(y)):
            try checkSize((x.count + y.count) * 8)
            return .list(x + y)
        case let ("*", .string(x), .int(n)), let ("*", .int(n), .string(x)):
            guard n <= 0 || x.string.utf8.count <= maxOutput / n else { throw fail("a repeated string would exceed \(maxOutput >> 20) MiB") }
            return .string(JinjaText(String(repeating: x.string, count: max(0, n)), isData: x.containsData))
        default: break
        }
        if let x = Self.integer(a), let y = Self.integer(b) { return try integerArithmetic(op, x, y) }
        guard let x = a.numeric, let y = b.numeric else { throw fail("cannot apply '\(op)' to a \(a.typeName) and a \(b.typeName)") }
        switch op {
        case "+": return .double(x + y)
        case "-": return .double(x - y)
        case "*": return .double(x * y)
        case "/":
            guard y != 0 else { throw fail("division by zero") }
            return .double(x / y)
        case "//":
            guard y != 0 else { throw fail("division by zero") }
            return .double((x / y).rounded(.down))
        case "%":
            guard y != 0 else { throw fail("modulo by zero") }
            return .double(x - y * (x / y).rounded(.down))
        case "**": return .double(pow(x, y))
        default: throw fail("unknown operator '\(op)'")
        }
    }

    /// Integers and booleans as Int; nil for anything else.
    static func integer(_ v: JinjaValue) -> Int? {
        switch v {
        case let .int(i): return i
        case let .bool(b): return b ? 1 : 0
        default: return nil
        }
    }

    /// Python's integer arithmetic within 64 bits: an overflow is an error, not a wrap or a trap.
    private func integerArithmetic(_ op: String, _ x: Int, _ y: Int) throws -> JinjaValue {
        func checked(_ r: (partialValue: Int, overflow: Bool)) throws -> JinjaValue {
            guard !r.overflow else { throw fail("'\(op)' overflows a 64-bit integer") }
            return .int(r.partialValue)
        }
        switch op {
        case "+": return try checked(x.addingReportingOverflow(y))
        case "-": return try checked(x.subtractingReportingOverflow(y))
        case "*": return try checked(x.multipliedReportingOverflow(by: y))
        case "/":
            guard y != 0 else { throw fail("division by zero") }
            return .double(Double(x) / Double(y))
        case "//", "%":
            guard y != 0 else { throw fail(op == "%" ? "modulo by zero" : "division by zero") }
            let q = x.dividedReportingOverflow(by: y), r = x.remainderReportingOverflow(dividingBy: y)
            guard !q.overflow, !r.overflow else { throw fail("'\(op)' overflows a 64-bit integer") }
            // Python floors: the remainder takes the divisor's sign
            let floors = r.partialValue != 0 && (r.partialValue < 0) != (y < 0)
            return .int(op == "//" ? q.partialValue - (floors ? 1 : 0) : r.partialValue + (floors ? y : 0))
        case "**":
            guard y >= 0 else { return .double(pow(Double(x), Double(y))) }
            var result = 1, base = x, exponent = y
            while exponent > 0 {
                if exponent & 1 == 1 { result = try Self.multiplied(result, base, fail("'**' overflows a 64-bit integer")) }
                exponent >>= 1
                if exponent > 0 { base = try Self.multiplied(base, base, fail("'**' overflows a 64-bit integer")) }
            }
            return .int(result)
        default: throw fail("unknown operator '\(op)'")
        }
    }

    private static func multiplied(_ a: Int, _ b: Int, _ error: @autoclosure () -> JinjaError) throws -> Int {
        let r = a.multipliedReportingOverflow(by: b)
        guard !r.overflow else { throw error() }
        return r.partialValue
    }

    func contains(_ container: JinjaValue, _ element: JinjaValue) throws -> Bool {
        switch container {
        case let .string(s):
            guard case let .string(e) = element else { throw fail("'in <string>' needs a string on the left") }
            return e.string.isEmpty || s.string.contains(e.string)
        case let .list(l): return l.contains { $0.equals(element) }
        case let .dict(d):
            guard case let .string(e) = element else { return false }
            return d.contains { $0.0 == e.string }
        case .undefined: return false
        default: throw fail("a \(container.typeName) has no members")
        }
    }
}
