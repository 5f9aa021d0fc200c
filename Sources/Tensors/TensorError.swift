/// Errors raised by tensor and autodiff operations. Each names the operation and the shapes
/// involved so a caller can tell which layer received what.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    /// Two operands whose shapes must agree do not.
    case shapeMismatch(op: String, lhs: Shape, rhs: Shape)
    /// An operand has a shape the operation cannot accept.
    case invalidShape(op: String, shape: Shape, expected: String)
    /// A value (index, count, parameter) is outside what the operation accepts.
    case invalidArgument(op: String, message: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, lhs, rhs):
            return "\(op): shape mismatch between \(lhs) and \(rhs)"
        case let .invalidShape(op, shape, expected):
            return "\(op): got shape \(shape), expected \(expected)"
        case let .invalidArgument(op, message):
            return "\(op): \(message)"
        }
    }
}
