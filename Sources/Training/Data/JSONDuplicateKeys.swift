import Foundation

/// Finds a key that appears twice in one JSON object. JSONSerialization keeps the last value of
/// a repeated key without a word, so `{"prompt": "a", "prompt": "b"}` would train on "b" while a
/// reader of the file sees "a" first.
///
/// A single pass over the bytes of text that already parsed as JSON: strings, escapes and
/// nesting are tracked; keys are compared as written (escape sequences not decoded).
///
/// Usage: `if let key = JSONDuplicateKeys.first(in: line) { ... }`
enum JSONDuplicateKeys {
    static func first(in json: Data) -> String? {
        var stack: [(keys: Set<Data>, expectingKey: Bool)?] = []  // nil for an array
        var index = json.startIndex
        while index < json.endIndex {
            let byte = json[index]
            switch byte {
            case UInt8(ascii: "{"): stack.append((keys: [], expectingKey: true))
            case UInt8(ascii: "["): stack.append(nil)
            case UInt8(ascii: "}"), UInt8(ascii: "]"): _ = stack.popLast()
            case UInt8(ascii: ","):
                if let top = stack.last, top != nil { stack[stack.count - 1]?.expectingKey = true }
            case UInt8(ascii: "\""):
                var end = json.index(after: index)
                while end < json.endIndex, json[end] != UInt8(ascii: "\"") {
                    if json[end] == UInt8(ascii: "\\") { end = json.index(after: end) }
                    if end < json.endIndex { end = json.index(after: end) }
                }
                let content = json[json.index(after: index)..<min(end, json.endIndex)]
                if let top = stack.last, let object = top, object.expectingKey {
                    if object.keys.contains(content) { return String(decoding: content, as: UTF8.self) }
                    stack[stack.count - 1]?.keys.insert(content)
                    stack[stack.count - 1]?.expectingKey = false
                }
                index = end
            default: break
            }
            if index < json.endIndex { index = json.index(after: index) }
        }
        return nil
    }
}
