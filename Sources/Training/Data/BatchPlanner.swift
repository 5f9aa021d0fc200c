import Autodiff
import Tensors

/// The token rows of one forward/backward pass.
public struct MicroBatch {
    public var tokens: [Int32]
    public var targets: [Int32]
    public var layout: PackedSequences
    public var exampleCount: Int
    public var targetCount: Int
    /// Tokens that belong to examples (not padding).
    public var realTokens: Int
    /// The example indices of each row, in layout order.
    public var exampleRows: [[Int]] = []

    public init(tokens: [Int32], targets: [Int32], layout: PackedSequences, exampleCount: Int, targetCount: Int, realTokens: Int) {
        self.tokens = tokens; self.targets = targets; self.layout = layout
        self.exampleCount = exampleCount; self.targetCount = targetCount; self.realTokens = realTokens
    }
}

/// Groups an epoch's examples, in order, into micro-batches.
///
/// Without packing each row holds one example, padded to the longest in the micro-batch.
/// With packing, consecutive examples fill rows of `rowCapacity` tokens (max_seq_len; twice
/// that for preference pairs, so any pair fits); attention and positions restart at each
/// sequence (`PackedSequences`), so packing changes speed, not the result.
///
/// Usage: `let plan = BatchPlanner(batchSize: 4, maxSeqLen: 512, packing: true).plan(order: order, examples: examples)`
public struct BatchPlanner {
    public let batchSize: Int
    public let maxSeqLen: Int
    public let packing: Bool
    public let padID: Int32
    /// Tokens a packed row may hold.
    public let rowCapacity: Int

    public init(batchSize: Int, maxSeqLen: Int, packing: Bool, padID: Int32 = 0, rowCapacity: Int? = nil) {
        self.batchSize = batchSize; self.maxSeqLen = maxSeqLen; self.packing = packing; self.padID = padID
        self.rowCapacity = rowCapacity ?? maxSeqLen
    }

    /// For each micro-batch, its rows, each a list of example indices.
    public func plan(order: [Int], examples: [TokenizedExample]) -> [[[Int]]] {
        var batches: [[[Int]]] = []
        var rows: [[Int]] = []
        if !packing {
            for start in stride(from: 0, to: order.count, by: batchSize) {
                batches.append(order[start..<min(order.count, start + batchSize)].map { [$0] })
            }
            return batches
        }
        var row: [Int] = [], used = 0
        for index in order {
            let length = examples[index].ids.count
            if used + length > rowCapacity && !row.isEmpty {
                rows.append(row)
                row = []; used = 0
            }
            row.append(index); used += length
        }
        if !row.isEmpty { rows.append(row) }
        for start in stride(from: 0, to: rows.count, by: batchSize) {
            batches.append(Array(rows[start..<min(rows.count, start + batchSize)]))
        }
        return batches
    }

    /// Builds the tensors of one planned micro-batch.
    public func assemble(_ rows: [[Int]], examples: [TokenizedExample]) throws -> MicroBatch {
        let lengths = rows.map { $0.flatMap { examples[$0].segmentLengths } }
        let seqLen = max(1, lengths.map { $0.reduce(0, +) }.max() ?? 1)
        var tokens: [Int32] = [], targets: [Int32] = []
        tokens.reserveCapacity(rows.count * seqLen)
        var exampleCount = 0, targetCount = 0, realTokens = 0
        for row in rows {
            var used = 0
            for index in row {
                let e = examples[index]
                tokens += e.ids
                targets += e.targets
                used += e.ids.count
                exampleCount += 1
                targetCount += e.targetCount
            }
            realTokens += used
            tokens += [Int32](repeating: padID, count: seqLen - used)
            targets += [Int32](repeating: Tape.ignoreIndex, count: seqLen - used)
        }
        let layout = try PackedSequences(seqLen: seqLen, rows: lengths)
        var batch = MicroBatch(tokens: tokens, targets: targets, layout: layout, exampleCount: exampleCount,
                               targetCount: targetCount, realTokens: realTokens)
        batch.exampleRows = rows
        return batch
    }
}
