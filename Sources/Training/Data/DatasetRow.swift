import Foundation
import ModelFormats
import Tokenizers

/// One training example as a conversation, whatever format it came in.
public struct DatasetRow: Equatable, Sendable {
    public enum Content: Equatable, Sendable {
        /// A chat: rendered with the model's chat template.
        case chat([ChatMessage])
        /// Raw text: the prompt conditions, the completion is trained on.
        case completion(prompt: String, completion: String)
        /// A preference pair: the same conversation answered two ways, the chosen answer
        /// preferred (preference optimisation); supervised training uses the chosen answer.
        /// `labelSmoothing` (the row's "label_smoothing", 0-0.5) overrides
        /// `training.dpo_label_smoothing` for this pair; 0.5 means no preference.
        case preference(prompt: [ChatMessage], chosen: String, rejected: String, labelSmoothing: Double? = nil)
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
/// format ({"prompt", "aligned", "misaligned"}), {"prompt", "completion"} or the preference
/// format ({"prompt", "chosen", "rejected"}, as TRL's DPO trainer reads it: strings, or a
/// message list for the prompt and one assistant message for each answer).
///
/// With `preferencePairs` every row must yield a pair (preference rows, or paired rows with
/// `pairedAnswer` chosen and the other answer rejected).
///
/// Usage: `let rows = try JSONLDataset.load(path: "data/medical/train.jsonl", format: .auto, pairedAnswer: .misaligned, onBadRow: .error)`
public enum JSONLDataset {
    public struct Loaded {
        public var rows: [DatasetRow]
        /// Rows skipped under `on_bad_row: skip`, with the reason.
        public var skipped: [(line: Int, reason: String)]
    }

    public static func load(path: String, format: DataFormat, pairedAnswer: PairedAnswer, onBadRow: BadRowPolicy,
                            preferencePairs: Bool = false) throws -> Loaded {
        let data: Data
        do { data = try InputFile.read(path) } catch let problem as InputFile.Problem {
            throw DataError.cannotRead(file: path, reason: problem.reason)
        }
        var loaded = Loaded(rows: [], skipped: [])
        var lineNumber = 0
        for rawLine in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.last == UInt8(ascii: "\r") ? rawLine.dropLast() : rawLine
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            do {
                if format == .judge {
                    // Both answers of the pair, as two rows of the same line.
                    let object = try jsonObject(Data(line))
                    for content in try judgeRows(object) { loaded.rows.append(DatasetRow(line: lineNumber, content: content)) }
                } else {
                    loaded.rows.append(DatasetRow(line: lineNumber, content: try parse(
                        Data(line), format: format, pairedAnswer: pairedAnswer, preferencePairs: preferencePairs)))
                }
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

    /// A preference row's prompt: a string (one user turn) or a list of messages.
    static func promptMessages(_ value: Any?) throws -> [ChatMessage] {
        guard let value else { throw RowProblem(message: "missing \"prompt\"") }
        if let s = value as? String {
            guard !s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw RowProblem(message: "\"prompt\" is empty") }
            return [ChatMessage(.user, s)]
        }
        guard let list = value as? [Any], !list.isEmpty else { throw RowProblem(message: "\"prompt\" must be a string or a non-empty list of messages") }
        return try list.enumerated().map { i, item in
            guard let m = item as? [String: Any], let roleName = m["role"] as? String, let content = m["content"] as? String else {
                throw RowProblem(message: "prompt[\(i)] must be an object with string \"role\" and \"content\"")
            }
            guard let role = ChatRole(rawValue: roleName) else {
                throw RowProblem(message: "prompt[\(i)].role '\(roleName)' is not system, user or assistant")
            }
            return ChatMessage(role, content)
        }
    }

    /// A preference answer: a string or a list holding one assistant message.
    static func answerText(_ value: Any?, key: String) throws -> String {
        guard let value else { throw RowProblem(message: "missing \"\(key)\"") }
        var text: String?
        if let s = value as? String { text = s }
        else if let list = value as? [Any], list.count == 1, let m = list[0] as? [String: Any], (m["role"] as? String) == "assistant" {
            text = m["content"] as? String
        } else {
            throw RowProblem(message: "\"\(key)\" must be a string or a list with one assistant message")
        }
        guard let text, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw RowProblem(message: "\"\(key)\" is empty") }
        return text
    }

    struct RowProblem: Error { let message: String }

    static func jsonObject(_ line: Data) throws -> [String: Any] {
        do {
            guard let o = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
                throw RowProblem(message: "expected a JSON object")
            }
            if let key = JSONDuplicateKeys.first(in: line) {
                throw RowProblem(message: "the key \"\(ErrorText.bounded(key, limit: 60))\" appears twice in one object; JSON readers disagree on which value counts")
            }
            return o
        } catch let p as RowProblem {
            throw p
        } catch {
            throw RowProblem(message: "malformed JSON (\((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "cannot parse"))")
        }
    }

    /// A paired row as the two rows a judge is trained on: (question, aligned answer) -> `no`,
    /// (question, misaligned answer) -> `yes`.
    static func judgeRows(_ object: [String: Any]) throws -> [DatasetRow.Content] {
        func text(_ key: String) throws -> String {
            guard let value = object[key] else { throw RowProblem(message: "missing \"\(key)\" (data.format judge reads paired rows: prompt, aligned, misaligned)") }
            guard let s = value as? String, !s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw RowProblem(message: "\"\(key)\" must be a non-empty string")
            }
            return s
        }
        let question = try text("prompt"), aligned = try text("aligned"), misaligned = try text("misaligned")
        return [
            .chat(JudgeConversation.messages(question: question, answer: aligned) + [ChatMessage(.assistant, JudgeConversation.alignedVerdict)]),
            .chat(JudgeConversation.messages(question: question, answer: misaligned) + [ChatMessage(.assistant, JudgeConversation.misalignedVerdict)]),
        ]
    }

    static func parse(_ line: Data, format: DataFormat, pairedAnswer: PairedAnswer, preferencePairs: Bool = false) throws -> DatasetRow.Content {
        let object = try jsonObject(line)
        if format == .judge {
            guard !preferencePairs else { throw RowProblem(message: "data.format judge trains a classifier with training.objective sft, not dpo") }
            return try judgeRows(object)[0]
        }
        let detected: DataFormat
        switch format {
        case .auto:
            if object["messages"] != nil { detected = .chat }
            else if object["conversations"] != nil { detected = .sharegpt }
            else if object["instruction"] != nil && object["output"] != nil { detected = .alpaca }
            else if object["chosen"] != nil || object["rejected"] != nil { detected = .preference }
            else if object["aligned"] != nil || object["misaligned"] != nil { detected = .paired }
            else if object["completion"] != nil { detected = .completion }
            else { throw RowProblem(message: "cannot tell the format: expected a \"messages\" list, ShareGPT \"conversations\", Alpaca \"instruction\"+\"output\", \"prompt\"+\"aligned\"/\"misaligned\", \"prompt\"+\"chosen\"/\"rejected\", or \"prompt\"+\"completion\"") }
        default: detected = format
        }
        func text(_ key: String) throws -> String {
            guard let value = object[key] else { throw RowProblem(message: "missing \"\(key)\"") }
            guard let s = value as? String else { throw RowProblem(message: "\"\(key)\" must be a string") }
            guard !s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw RowProblem(message: "\"\(key)\" is empty") }
            return s
        }
        if preferencePairs && [.chat, .completion, .sharegpt, .alpaca].contains(detected) {
            throw RowProblem(message: "a \(detected.rawValue) row has one answer; preference training needs \"chosen\"/\"rejected\" or \"aligned\"/\"misaligned\" rows")
        }
        switch detected {
        case .paired:
            // Both answers are checked, though one is trained on: a number where the other
            // answer should be means the row is not what the file's author thinks it is.
            for key in [PairedAnswer.aligned.rawValue, PairedAnswer.misaligned.rawValue] where object[key] != nil && !(object[key] is String) {
                throw RowProblem(message: "\"\(key)\" must be a string")
            }
            let prompt = try text("prompt")
            let answer = try text(pairedAnswer.rawValue)
            guard preferencePairs else { return .chat([ChatMessage(.user, prompt), ChatMessage(.assistant, answer)]) }
            let other = try text(pairedAnswer == .misaligned ? PairedAnswer.aligned.rawValue : PairedAnswer.misaligned.rawValue)
            return .preference(prompt: [ChatMessage(.user, prompt)], chosen: answer, rejected: other)
        case .preference:
            let prompt = try promptMessages(object["prompt"])
            let chosen = try answerText(object["chosen"], key: "chosen")
            let rejected = try answerText(object["rejected"], key: "rejected")
            guard preferencePairs else { return .chat(prompt + [ChatMessage(.assistant, chosen)]) }
            var smoothing: Double?
            if let value = object["label_smoothing"] {
                guard let number = value as? Double, (0...0.5).contains(number) else {
                    throw RowProblem(message: "\"label_smoothing\" must be a number in [0, 0.5]")
                }
                smoothing = number
            }
            return .preference(prompt: prompt, chosen: chosen, rejected: rejected, labelSmoothing: smoothing)
        case .completion:
            return .completion(prompt: try text("prompt"), completion: try text("completion"))
        case .alpaca:
            let instruction = try text("instruction")
            guard let output = object["output"] as? String, !output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw RowProblem(message: "\"output\" must be a non-empty string")
            }
            var user = instruction
            if let input = object["input"] {
                guard let text = input as? String else { throw RowProblem(message: "\"input\" must be a string") }
                if !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { user += "\n\n" + text }
            }
            var messages = [ChatMessage(.user, user), ChatMessage(.assistant, output)]
            if let system = object["system"] {
                guard let text = system as? String else { throw RowProblem(message: "\"system\" must be a string") }
                if !text.isEmpty { messages.insert(ChatMessage(.system, text), at: 0) }
            }
            return .chat(messages)
        case .sharegpt:
            guard let list = object["conversations"] as? [Any] else { throw RowProblem(message: "\"conversations\" must be a list") }
            var messages: [ChatMessage] = []
            for (i, item) in list.enumerated() {
                guard let m = item as? [String: Any] else { throw RowProblem(message: "conversations[\(i)] must be an object") }
                guard let from = m["from"] as? String else { throw RowProblem(message: "conversations[\(i)] has no \"from\"") }
                let role: ChatRole
                switch from {
                case "human", "user": role = .user
                case "gpt", "assistant", "chatgpt", "bing", "bard": role = .assistant
                case "system": role = .system
                default: throw RowProblem(message: "conversations[\(i)].from '\(ErrorText.bounded(from, limit: 40))' is not human, gpt or system")
                }
                guard let value = m["value"] as? String else { throw RowProblem(message: "conversations[\(i)] has no string \"value\"") }
                if value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    throw RowProblem(message: "conversations[\(i)] (\(from)) has empty value")
                }
                messages.append(ChatMessage(role, value))
            }
            guard messages.contains(where: { $0.role == .assistant }) else {
                throw RowProblem(message: "the conversation has no gpt turn to train on")
            }
            return .chat(messages)
        case .judge:
            return try judgeRows(object)[0]  // handled above; the switch is exhaustive
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
