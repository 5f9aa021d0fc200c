import Foundation
import ModelFormats
import Yams

/// Composes YAML into a node tree only after checking that the tree stays within limits a
/// config or suite never needs to exceed.
///
/// Yams composes and our readers walk the tree recursively, so a document nested a few
/// thousand levels deep (10 KB of `[` or `- `) would overflow the stack, and a handful of
/// aliases can stand for billions of nodes. The nesting is bounded by a scan of the text
/// before anything is composed; the expanded size by a counted walk after.
///
/// Usage: `let root = try BoundedYAML.compose(text, source: "configs/x.yaml")`
public enum BoundedYAML {
    /// Deepest nesting of collections accepted (the shipped configs use 3).
    public static let maximumDepth = 64
    /// Most nodes accepted once aliases are expanded.
    public static let maximumNodes = 1_000_000
    /// Longest text accepted (the shipped eval suites are under 100 KB).
    public static let maximumBytes = 16 << 20

    /// Why a document was refused; the message never quotes more than a line's start.
    public enum LimitError: Error, CustomStringConvertible, Equatable {
        case tooLarge(bytes: Int)
        case tooDeep(line: Int)
        case tooManyNodes
        case invalid(message: String)

        public var description: String {
            switch self {
            case let .tooLarge(bytes):
                return "the text is \(bytes) bytes; at most \(BoundedYAML.maximumBytes) are accepted"
            case let .tooDeep(line):
                return "line \(line): nested more than \(BoundedYAML.maximumDepth) levels deep"
            case .tooManyNodes:
                return "its aliases expand to more than \(BoundedYAML.maximumNodes) values"
            case let .invalid(message):
                return message
            }
        }
    }

    /// The composed root (nil for an empty document), or a `LimitError`.
    public static func compose(_ text: String) throws -> Node? {
        guard text.utf8.count <= maximumBytes else { throw LimitError.tooLarge(bytes: text.utf8.count) }
        if let line = lineExceedingDepth(text) { throw LimitError.tooDeep(line: line) }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw LimitError.invalid(message: ErrorText.bounded("\(error)", limit: 600, keepingNewlines: true))
        }
        if let root, !fits(root) { throw LimitError.tooManyNodes }
        return root
    }

    /// The first line whose nesting may exceed `maximumDepth`, or nil.
    ///
    /// An upper bound, not a parse: open flow brackets, plus the block indentation levels
    /// still open, plus compact `- ` / `? ` indicators starting the line. Quoted text, comments
    /// and the bodies of block scalars (`|`, `>`) do not count.
    static func lineExceedingDepth(_ text: String) -> Int? {
        var flowDepth = 0
        var indents: [Int] = []
        var quote: UInt8? = nil
        var blockScalarParent: Int? = nil  // indentation of the line that opened a block scalar
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let bytes = Array(line.utf8)
            var i = 0
            while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
            let indent = i
            let blank = i == bytes.count || bytes[i] == UInt8(ascii: "#") || bytes[i] == UInt8(ascii: "\r")
            if let parent = blockScalarParent {
                if blank || indent > parent { continue }
                blockScalarParent = nil
            }
            if quote == nil && flowDepth == 0 && !blank {
                while let last = indents.last, last > indent { indents.removeLast() }
                if indents.last != indent { indents.append(indent) }
                // compact nested collections: "- - - x" or "? - x"
                while i + 1 < bytes.count, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "?"),
                      bytes[i + 1] == UInt8(ascii: " ") {
                    indents.append(i + 1)
                    i += 2
                    while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
                }
                if indents.count > maximumDepth { return lineNumber }
            }
            var lastSignificant: UInt8? = nil
            while i < bytes.count {
                let c = bytes[i]
                if let q = quote {
                    if c == q {
                        if q == UInt8(ascii: "'"), i + 1 < bytes.count, bytes[i + 1] == q { i += 2; continue }
                        quote = nil
                    } else if c == UInt8(ascii: "\\"), q == UInt8(ascii: "\"") {
                        i += 1
                    }
                } else {
                    switch c {
                    case UInt8(ascii: "\""), UInt8(ascii: "'"):
                        // a quote opens a quoted scalar only where a scalar can start
                        let before = i == 0 ? UInt8(ascii: " ") : bytes[i - 1]
                        if [UInt8(ascii: " "), UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ","), UInt8(ascii: ":"), UInt8(ascii: "-")].contains(before) {
                            quote = c
                        }
                    case UInt8(ascii: "#") where i == 0 || bytes[i - 1] == UInt8(ascii: " "):
                        i = bytes.count
                        continue
                    case UInt8(ascii: "["), UInt8(ascii: "{"):
                        flowDepth += 1
                        if flowDepth + indents.count > maximumDepth { return lineNumber }
                    case UInt8(ascii: "]"), UInt8(ascii: "}"):
                        flowDepth = max(0, flowDepth - 1)
                    default:
                        break
                    }
                    if c != UInt8(ascii: " ") && c != UInt8(ascii: "\r") { lastSignificant = c }
                }
                i += 1
            }
            if quote == nil, flowDepth == 0, let last = lastSignificant, last == UInt8(ascii: "|") || last == UInt8(ascii: ">") || isBlockScalarHeader(bytes) {
                blockScalarParent = indent
            }
        }
        return nil
    }

    /// "key: |-", "- >2" and the like: the line ends in a block scalar indicator with its
    /// optional chomping and indentation digits.
    private static func isBlockScalarHeader(_ bytes: [UInt8]) -> Bool {
        var end = bytes.count
        while end > 0, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        var j = end
        while j > 0, bytes[j - 1] == UInt8(ascii: "-") || bytes[j - 1] == UInt8(ascii: "+") || (bytes[j - 1] >= 0x30 && bytes[j - 1] <= 0x39) { j -= 1 }
        guard j > 0, j < end, bytes[j - 1] == UInt8(ascii: "|") || bytes[j - 1] == UInt8(ascii: ">") else { return false }
        return j == 1 || bytes[j - 2] == UInt8(ascii: " ")
    }

    /// Whether the tree, aliases expanded, has at most `maximumNodes` nodes. Iterative, so
    /// the walk itself cannot overflow the stack.
    static func fits(_ root: Node) -> Bool {
        var stack: [Node] = [root]
        var count = 0
        while let node = stack.popLast() {
            count += 1
            if count > maximumNodes { return false }
            switch node {
            case .scalar: break
            case .sequence(let s): stack.append(contentsOf: s)
            case .mapping(let m):
                for (k, v) in m { stack.append(k); stack.append(v) }
            }
        }
        return true
    }
}
