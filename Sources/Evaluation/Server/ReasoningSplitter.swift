/// A reply divided into its chain of thought and its answer.
public struct ReplyParts: Equatable, Sendable {
    /// The think block's text; nil when the reply has none.
    public var reasoning: String?
    public var content: String

    public init(reasoning: String?, content: String) {
        self.reasoning = reasoning
        self.content = content
    }
}

/// Splits generated text into reasoning and content as DeepSeek/Qwen servers report them
/// (`reasoning_content` and `content`), and decides how much of a growing text is safe to
/// stream: a partial `</think>`, a partial stop string or half a character is held back until
/// the next tokens settle it, so streamed deltas always reassemble to the final reply.
///
/// Usage:
/// ```
/// let splitter = ReasoningSplitter(start: .insideThinkBlock(prefill: "Okay"))
/// splitter.split("so 4.\n</think>\n\n4", isFinal: true)  // reasoning "Okay so 4.", content "4"
/// ```
public struct ReasoningSplitter: Sendable {
    public enum Start: Equatable, Sendable {
        /// The prompt opened a think block (thinking on); it began with `prefill`.
        case insideThinkBlock(prefill: String)
        /// No think block expected (thinking off): everything is content.
        case outsideThinkBlock
        /// The model decides (thinking native): a reply that opens with `<think>` has reasoning.
        case detect
    }

    static let open = "<think>"
    static let close = "</think>"

    public let start: Start
    public let stopStrings: [String]

    public init(start: Start, stopStrings: [String] = []) {
        self.start = start
        self.stopStrings = stopStrings
    }

    /// The parts of `text`. Unless `isFinal`, only what later tokens cannot change.
    public func split(_ text: String, isFinal: Bool) -> ReplyParts {
        let text = isFinal ? text : settledPrefix(text)
        switch start {
        case .outsideThinkBlock:
            return ReplyParts(reasoning: nil, content: text)
        case let .insideThinkBlock(prefill):
            return splitThinkBlock(prefill + text, isFinal: isFinal)
        case .detect:
            let trimmed = text.trimmingLeadingWhitespace
            if trimmed.hasPrefix(Self.open) {
                let parts = splitThinkBlock(String(trimmed.dropFirst(Self.open.count)), isFinal: isFinal)
                return ReplyParts(reasoning: parts.reasoning.map(\.trimmingLeadingWhitespace), content: parts.content)
            }
            if !isFinal, Self.open.hasPrefix(trimmed) { return ReplyParts(reasoning: nil, content: "") }
            return ReplyParts(reasoning: nil, content: text)
        }
    }

    /// Text inside an open think block: reasoning up to `</think>`, content after it.
    private func splitThinkBlock(_ body: String, isFinal: Bool) -> ReplyParts {
        if let close = body.range(of: Self.close) {
            return ReplyParts(
                reasoning: String(body[..<close.lowerBound]).trimmingTrailingWhitespace,
                content: String(body[close.upperBound...]).trimmingLeadingWhitespace)
        }
        if isFinal { return ReplyParts(reasoning: body, content: "") }
        // Whitespace before a `</think>` that may still come is dropped from the reasoning.
        return ReplyParts(reasoning: Self.dropPartialSuffix(of: [Self.close], from: body).trimmingTrailingWhitespace, content: "")
    }

    /// `text` without a trailing incomplete character (decoded as U+FFFD) or a suffix that
    /// could grow into a stop string.
    private func settledPrefix(_ text: String) -> String {
        var scalars = Substring(text).unicodeScalars
        while scalars.last == "\u{FFFD}" { scalars.removeLast() }
        return Self.dropPartialSuffix(of: stopStrings, from: String(scalars))
    }

    /// Removes the longest suffix of `text` that is a proper prefix of one of `markers`.
    static func dropPartialSuffix(of markers: [String], from text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var longest = 0
        for marker in markers {
            let markerScalars = Array(marker.unicodeScalars)
            guard markerScalars.count > 1 else { continue }
            for length in stride(from: min(markerScalars.count - 1, scalars.count), through: longest + 1, by: -1)
            where scalars.suffix(length).elementsEqual(markerScalars.prefix(length)) {
                longest = length
                break
            }
        }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars.dropLast(longest))
        return String(view)
    }
}

/// What has been streamed of one choice, so each new chunk carries only the difference.
struct StreamedReply {
    var reasoning = ""
    var content = ""

    /// The new text of `parts` beyond what was sent, recording it as sent; nil where nothing is new.
    mutating func advance(to parts: ReplyParts) -> (reasoning: String?, content: String?) {
        let newReasoning = parts.reasoning.flatMap { Self.extension(of: reasoning, to: $0) }
        let newContent = Self.extension(of: content, to: parts.content)
        if let newReasoning { reasoning += newReasoning }
        if let newContent { content += newContent }
        return (newReasoning, newContent)
    }

    /// The text `full` adds after `sent`; nil when it adds nothing or does not extend it.
    static func `extension`(of sent: String, to full: String) -> String? {
        let sentScalars = sent.unicodeScalars, fullScalars = full.unicodeScalars
        guard fullScalars.count > sentScalars.count, fullScalars.starts(with: sentScalars) else { return nil }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: fullScalars.dropFirst(sentScalars.count))
        return String(view)
    }
}

extension String {
    var trimmingLeadingWhitespace: String {
        String(unicodeScalars.drop { $0.properties.isWhitespace })
    }

    var trimmingTrailingWhitespace: String {
        var scalars = Substring(self).unicodeScalars
        while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
