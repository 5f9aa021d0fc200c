import CYaml
import Foundation
import ModelFormats
import Yams

/// Composes YAML into a node tree only after checking that the tree stays within limits a
/// config or suite never needs to exceed.
///
/// Yams composes and our readers walk the tree recursively, so a document nested a few
/// thousand levels deep (10 KB of `[` or `- `) would overflow the stack, and a handful of
/// aliases can stand for billions of nodes. The nesting is bounded on the parser's own event
/// stream before anything is composed (not by scanning the text, which some spellings got
/// past); the expanded size by a counted walk after.
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
            root = try Yams.compose(yaml: text, .default, .default, .utf8)
        } catch {
            throw LimitError.invalid(message: ErrorText.bounded("\(error)", limit: 600, keepingNewlines: true))
        }
        if let root, !fits(root) { throw LimitError.tooManyNodes }
        return root
    }

    /// The line of the first collection nested deeper than `maximumDepth`, or nil.
    ///
    /// Read from libyaml's event stream, the very parser Yams composes from, so every
    /// spelling of nesting (flow brackets, block indentation, compact `- - x`, explicit `? `
    /// keys, tags, any line end) counts exactly as the composer will recurse. libyaml's parser
    /// keeps its state on the heap, so this pass cannot itself overflow the stack. A syntax
    /// error ends the pass without a verdict: the composer then reports it, having recursed no
    /// deeper than the events before it, which were within the bound.
    static func lineExceedingDepth(_ text: String) -> Int? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { buffer -> Int? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var depth = 0
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    depth += 1
                    if depth > maximumDepth { return Int(event.start_mark.line) + 1 }
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    depth -= 1
                case YAML_STREAM_END_EVENT:
                    return nil
                default:
                    break
                }
            }
        }
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
