/// A failed HDF5 operation, naming the file and the object inside it.
public enum HDF5Error: Error, Equatable, CustomStringConvertible {
    /// The file could not be created (directory missing, no permission, ...).
    case cannotCreate(file: String, reason: String)
    /// The file could not be opened: missing, not HDF5, or truncated.
    case cannotOpen(file: String, reason: String)
    case objectNotFound(file: String, object: String)
    case attributeNotFound(file: String, object: String, attribute: String)
    /// The object exists but holds another kind of data than asked for.
    case wrongDataType(file: String, object: String, expected: String, found: String)
    /// Any other library call that failed; `operation` says what was being done.
    case operationFailed(file: String, object: String, operation: String, reason: String)
    case fileClosed(file: String)
    /// A size or count the file declares is impossible for a file of its length (damage or a
    /// hostile file); nothing was allocated for it.
    case implausibleSize(file: String, object: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotCreate(file, reason):
            return "HDF5: cannot create '\(file)': \(reason)"
        case let .cannotOpen(file, reason):
            return "HDF5: cannot open '\(file)': \(reason)"
        case let .objectNotFound(file, object):
            return "HDF5: '\(file)' has no object '\(object)'"
        case let .attributeNotFound(file, object, attribute):
            return "HDF5: '\(file)': '\(object)' has no attribute '\(attribute)'"
        case let .wrongDataType(file, object, expected, found):
            return "HDF5: '\(file)': '\(object)' holds \(found), expected \(expected)"
        case let .operationFailed(file, object, operation, reason):
            return "HDF5: '\(file)': \(operation) '\(object)' failed: \(reason)"
        case let .fileClosed(file):
            return "HDF5: '\(file)' is already closed"
        case let .implausibleSize(file, object, reason):
            return "HDF5: '\(file)': '\(object)' \(reason); the file is damaged"
        }
    }
}
