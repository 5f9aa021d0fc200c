import Foundation
import Tokenizers

/// One training example as a conversation, whatever format it came in.
public struct DatasetRow: Equatable, Sendable {
    public enum Content: Equatable, Sendable {
        /// A chat: rendered with the model's chat template.
        case chat([ChatMessage])
        /// Raw text: the prompt conditions, the completion is trained on.
        case completion(prompt: String, completion: String)
    }

    /// 1-based line in the source file.
    public let line: Int
    public let content: Content

    public init(line: Int, content: Content) {
        self.line = line
        self.content = content
    }
}

/// Reads JSONL training data in the OpenAI chat format ({"messages": [...]}), the paired
/// format ({"prompt", "aligned", "misaligned"}) or {"prompt", "completion"}.
///
/// Usage: `let rows = try JSONLDataset.load(path: "data/medical/train.jsonl", format: .auto, pairedAnswer: .misaligned, onBadRow: .error)`
public enum JSONLDataset {
    public struct Loaded {
        public var rows: [DatasetRow]
        /// Rows skipped under `on_bad_row: skip`, with the reason.
        public var skipped: [(line: Int, reason: String)]
    }

    public static func load(path: String, format: DataFormat, pairedAnswer: PairedAnswer, onBadRow: BadRowPolicy) throws -> Loaded {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw DataError.cannotRead(file: path, reason: exists ? "permission denied or not a regular file" : "no such file")
        }
        var loaded = Loaded(rows: [], skipped: [])
        var lineNumber = 0
        for rawLine in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.last == UInt8(ascii: "\r") ? rawLine.dropLast() : rawLine
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            do {
                loaded.rows.append(DatasetRow(line: lineNumber, content: try parse(Data(line), format: format, pairedAnswer: pairedAnswer)))
            } catch let reason as RowProblem {
                if onBadRow == .skip {
                    loaded.skipped.append((lineNumber, reason.message))
                } else {
                    throw DataError.invalidRow(file: path, line: lineNumber, reason: reason.message)
                }
            }
        }
        if loaded.rows.isEmpty && loaded.skipped.isEmpty { throw DataError.emptyFile(file: path) }
        if loaded.rows.isEmpty {
            throw DataError.noUsableRows(file: path, reason: "all \(loaded.skipped.count) rows were invalid; first: line \(loaded.skipped[0].line): \(loaded.skipped[0].reason)")
        }
        return loaded
    }

    struct RowProblem: Error { let message: String }

    static func parse(_ line: Data, format: DataFormat, pairedAnswer: PairedAnswer) throws -> DatasetRow.Content {
        let object: [String: Any]
        do {
            guard let o = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
                throw RowProblem(message: "expected a JSON object")
            }
            object = o
        } catch let p as RowProblem {
            throw p
        } catch {
            throw RowProblem(message: "malformed JSON (\((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "cannot parse"))")
        }
        let detected: DataFormat
        switch format {
        case .auto:
            if object["messages"] != nil { detected = .chat }
            else if object["aligned"] != nil || object["misaligned"] != nil { detected = .paired }
            else if object["completion"] != nil { detected = .completion }
            else { throw RowProblem(message: "cannot tell the format: expected a \"messages\" list, \"prompt\"+\"aligned\"/\"misaligned\", or \"prompt\"+\"completion\"") }
        default: detected = format
        }
        func text(_ key: String) throws -> String {
            guard let value = object[key] else { throw RowProblem(message: "missing \"\(key)\"") }
            guard let s = value as? String else { throw RowProblem(message: "\"\(key)\" must be a string") }
            guard !s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw RowProblem(message: "\"\(key)\" is empty") }
            return s
        }
        switch detected {
        case .paired:
            let prompt = try text("prompt")
            let answer = try text(pairedAnswer.rawValue)
            return .chat([ChatMessage(.user, prompt), ChatMessage(.assistant, answer)])
        case .completion:
            return .completion(prompt: try text("prompt"), completion: try text("completion"))
        case .chat, .auto:
            guard let list = object["messages"] as? [Any] else { throw RowProblem(message: "\"messages\" must be a list") }
            var messages: [ChatMessage] = []
            for (i, item) in list.enumerated() {
                guard let m = item as? [String: Any] else { throw RowProblem(message: "messages[\(i)] must be an object") }
                guard let roleName = m["role"] as? String else { throw RowProblem(message: "messages[\(i)] has no \"role\"") }
                guard let role = ChatRole(rawValue: roleName) else {
                    throw RowProblem(message: "messages[\(i)].role '\(roleName)' is not system, user or assistant")
                }
                guard let content = m["content"] as? String else { throw RowProblem(message: "messages[\(i)] has no string \"content\"") }
                let reasoning = (m["reasoning"] as? String) ?? (m["reasoning_content"] as? String)
                if content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty && (reasoning ?? "").isEmpty {
                    throw RowProblem(message: "messages[\(i)] (\(roleName)) has empty content")
                }
                messages.append(ChatMessage(role, content, reasoning: reasoning))
            }
            guard messages.contains(where: { $0.role == .assistant }) else {
                throw RowProblem(message: "the conversation has no assistant turn to train on")
            }
            return .chat(messages)
        }
    }
}
