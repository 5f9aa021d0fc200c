/// Problems with a training or validation data file. Each names the file and, where there is
/// one, the line.
public enum DataError: Error, Equatable, CustomStringConvertible {
    case cannotRead(file: String, reason: String)
    case emptyFile(file: String)
    case invalidRow(file: String, line: Int, reason: String)
    case noUsableRows(file: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(file, reason): return "\(file): cannot read: \(reason)"
        case let .emptyFile(file): return "\(file): the file has no rows"
        case let .invalidRow(file, line, reason): return "\(file):\(line): \(reason)"
        case let .noUsableRows(file, reason): return "\(file): no usable rows: \(reason)"
        }
    }
}
