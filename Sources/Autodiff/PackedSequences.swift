import Tensors

/// How token rows of a batch are divided into independent sequences.
///
/// Each of `batch` rows holds `seqLen` tokens made of one or more packed sequences laid end to
/// end. Attention never crosses a sequence boundary and positions restart at 0 in each
/// sequence, so a packed row computes exactly what its sequences would compute alone.
///
/// Usage: `let layout = try PackedSequences(seqLen: 8, rows: [[5, 3], [8]])`
public struct PackedSequences: Equatable, Sendable {
    public let batch: Int
    public let seqLen: Int
    /// For every token (batch-major), the index within its row where its sequence starts.
    public let segmentStart: [Int32]
    /// For every token, its position inside its own sequence.
    public let positions: [Int32]

    /// `rows[b]` lists the lengths of the sequences packed into row b; they must sum to at most
    /// `seqLen` (the remainder is padding, treated as one more sequence).
    public init(seqLen: Int, rows: [[Int]]) throws {
        guard seqLen > 0 else {
            throw TensorError.invalidArgument(op: "PackedSequences", message: "seqLen must be positive")
        }
        var starts: [Int32] = [], positions: [Int32] = []
        starts.reserveCapacity(rows.count * seqLen)
        positions.reserveCapacity(rows.count * seqLen)
        for (b, lengths) in rows.enumerated() {
            guard lengths.allSatisfy({ $0 > 0 }), lengths.reduce(0, +) <= seqLen else {
                throw TensorError.invalidArgument(
                    op: "PackedSequences",
                    message: "row \(b) lengths \(lengths) must be positive and sum to at most \(seqLen)")
            }
            var segments = lengths
            let used = lengths.reduce(0, +)
            if used < seqLen { segments.append(seqLen - used) }
            var start = 0
            for len in segments {
                for p in 0..<len {
                    starts.append(Int32(start))
                    positions.append(Int32(p))
                }
                start += len
            }
        }
        batch = rows.count
        self.seqLen = seqLen
        segmentStart = starts
        self.positions = positions
    }

    /// One unpacked sequence per row, each filling the row.
    public init(batch: Int, seqLen: Int) throws {
        try self.init(seqLen: seqLen, rows: Array(repeating: [seqLen], count: batch))
    }

    public var tokenCount: Int { batch * seqLen }
}
