/// A chat template that cannot be parsed or rendered.
public enum JinjaError: Error, Equatable, CustomStringConvertible {
    /// The template text is not valid in the Jinja subset (line of the template).
    case syntax(line: Int, message: String)
    /// Rendering failed (an unknown filter, a wrong type, an undefined value used).
    case render(line: Int, message: String)
    /// The template refused the conversation with `raise_exception(message)`.
    case raised(String)

    public var description: String {
        switch self {
        case let .syntax(line, message): return "chat template line \(line): \(message)"
        case let .render(line, message): return "chat template line \(line): \(message)"
        case let .raised(message): return "the chat template refused the conversation: \(message)"
        }
    }
}
