import Tensors

/// Keys and values already computed for one sequence, per layer, so each generated token costs
/// one token's worth of work instead of the whole prefix.
///
/// Usage: `let cache = KVCache(layers: 30, width: 3 * 64, capacity: 256)`
public final class KVCache {
    /// Number of positions stored (the same in every layer once a forward pass completes).
    public private(set) var length = 0
    let width: Int
    private(set) var capacity: Int
    private var keys: [Tensor]
    private var values: [Tensor]

    public init(layers: Int, width: Int, capacity: Int = 64) {
        self.width = width
        self.capacity = max(capacity, 1)
        keys = (0..<layers).map { _ in Tensor(zeros: [max(capacity, 1), width]) }
        values = (0..<layers).map { _ in Tensor(zeros: [max(capacity, 1), width]) }
    }

    private func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        var newCapacity = capacity
        while newCapacity < needed { newCapacity *= 2 }
        for l in keys.indices {
            let k = Tensor(zeros: [newCapacity, width]), v = Tensor(zeros: [newCapacity, width])
            k.pointer.update(from: keys[l].pointer, count: length * width)
            v.pointer.update(from: values[l].pointer, count: length * width)
            keys[l] = k
            values[l] = v
        }
        capacity = newCapacity
    }

    /// Appends `count` rows of k and v for `layer` at positions [length, length + count) and
    /// returns pointers to the whole cache of that layer. The new length is committed by `advance`.
    func append(layer: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, count: Int)
        -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>)
    {
        reserve(length + count)
        (keys[layer].pointer + length * width).update(from: k, count: count * width)
        (values[layer].pointer + length * width).update(from: v, count: count * width)
        return (UnsafePointer(keys[layer].pointer), UnsafePointer(values[layer].pointer))
    }

    /// Commits `count` new positions after every layer has appended them.
    func advance(by count: Int) { length += count }

    /// Forgets positions from `newLength` on (for re-using a shared prompt prefix).
    public func truncate(to newLength: Int) { length = min(length, max(0, newLength)) }
}

/// Several sequences advancing together through a cached forward pass: sequence s contributes
/// `newTokens[s]` consecutive rows of the batch.
public struct CachedBatch {
    public let caches: [KVCache]
    public let newTokens: [Int]

    public init(caches: [KVCache], newTokens: [Int]) throws {
        guard caches.count == newTokens.count, newTokens.allSatisfy({ $0 > 0 }) else {
            throw ModelError.invalidInput("cached batch needs one positive token count per cache")
        }
        self.caches = caches
        self.newTokens = newTokens
    }

    /// Absolute position of every new row.
    public var positions: [Int32] {
        var p: [Int32] = []
        for (cache, n) in zip(caches, newTokens) { p += (0..<n).map { Int32(cache.length + $0) } }
        return p
    }

    public var rowCount: Int { newTokens.reduce(0, +) }
}

/// How attention finds the keys a row may see.
public enum AttentionContext {
    /// Training and scoring: rows hold packed sequences, attention stays inside each.
    case packed(PackedSequences)
    /// Generation: rows are new tokens of cached sequences.
    case cached(CachedBatch)

    var positions: [Int32] {
        switch self {
        case .packed(let layout): return layout.positions
        case .cached(let batch): return batch.positions
        }
    }
}

import Autodiff
