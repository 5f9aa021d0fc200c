/// The dimensions of a row-major tensor, outermost first.
///
/// Usage: `let s: Shape = [2, 3]; s.count == 6`
public struct Shape: Hashable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    public let dims: [Int]

    public init(_ dims: [Int]) {
        precondition(dims.allSatisfy { $0 >= 0 }, "negative dimension in shape \(dims)")
        self.dims = dims
    }

    public init(arrayLiteral elements: Int...) { self.init(elements) }

    /// Number of elements (1 for a scalar shape `[]`).
    public var count: Int { dims.reduce(1, *) }
    public var rank: Int { dims.count }
    public subscript(axis: Int) -> Int { dims[axis] }
    /// The last dimension, or 1 for a scalar.
    public var last: Int { dims.last ?? 1 }
    /// Product of all dimensions but the last: the number of rows when viewed as a matrix.
    public var rows: Int { dims.dropLast().reduce(1, *) }

    public var description: String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }
}
