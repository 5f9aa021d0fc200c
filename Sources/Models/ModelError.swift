/// Errors raised while building or running a model.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case invalidConfig(String)
    /// A tensor the architecture needs is absent from the weight file.
    case missingTensor(name: String, file: String)
    /// A tensor has a shape the configuration does not allow.
    case tensorShape(name: String, file: String, expected: [Int], found: [Int])
    case unsupported(String)
    case invalidInput(String)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidConfig(let m): return "invalid model configuration: \(m)"
        case let .missingTensor(name, file): return "\(file): tensor '\(name)' is missing"
        case let .tensorShape(name, file, expected, found):
            return "\(file): tensor '\(name)' has shape \(found), expected \(expected)"
        case .unsupported(let m): return "unsupported: \(m)"
        case .invalidInput(let m): return m
        case let .io(path, reason): return "\(path): \(reason)"
        }
    }
}
