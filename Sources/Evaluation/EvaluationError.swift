/// Why an evaluation could not start or finish. Each case names the suite file, question or
/// judge involved.
public enum EvaluationError: Error, Equatable, CustomStringConvertible {
    case invalidSuite(file: String, message: String)
    case judgeUnavailable(judge: String, reason: String)
    case invalidInput(String)
    case io(path: String, reason: String)
    /// Several problems in one config file, each "file:line: key: message".
    case invalidConfig(file: String, problems: [String])
    /// The run cannot fit in memory; the message gives the estimate.
    case tooLarge(String)

    public var description: String {
        switch self {
        case let .invalidSuite(file, message): return "\(file): \(message)"
        case let .judgeUnavailable(judge, reason): return "judge '\(judge)' unavailable: \(reason)"
        case .invalidInput(let m), .tooLarge(let m): return m
        case let .io(path, reason): return "\(path): \(reason)"
        case let .invalidConfig(file, problems):
            return "\(file) has \(problems.count) problems:\n" + problems.map { "  " + $0 }.joined(separator: "\n")
        }
    }
}
