import Foundation

/// Owns one aligned Float32 buffer; tensors are views into it.
public final class TensorStorage: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Float>
    public let capacity: Int

    /// Allocates `capacity` floats, 64-byte aligned (one cache line, one AVX-512 register).
    public init(capacity: Int, zeroed: Bool = true) {
        let bytes = max(capacity, 1) * MemoryLayout<Float>.stride
        let raw = StoragePool.shared.take(bytes: bytes)
            ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        base = raw.bindMemory(to: Float.self, capacity: max(capacity, 1))
        self.capacity = capacity
        if zeroed { base.initialize(repeating: 0, count: max(capacity, 1)) }
    }

    deinit {
        let raw = UnsafeMutableRawPointer(base)
        if !StoragePool.shared.give(raw, bytes: max(capacity, 1) * MemoryLayout<Float>.stride) { raw.deallocate() }
    }
}

/// Keeps a bounded number of freed large buffers for reuse by the next tensor of the same size.
///
/// A training step allocates the same shapes every step; without reuse each large buffer is a
/// fresh mapping (AllocatorPolicy) whose pages fault in and get zeroed by the kernel, ~8% of a
/// bf16 step in perf. Buffers under `minimumBytes` stay with malloc; at most `maximumIdleBytes`
/// wait here, so peak RSS grows by at most that much.
final class StoragePool: @unchecked Sendable {
    static let shared = StoragePool()
    let minimumBytes = 1 << 20
    let maximumIdleBytes = 192 << 20
    private var idle: [Int: [UnsafeMutableRawPointer]] = [:]
    private var idleBytes = 0
    private let lock = NSLock()

    func take(bytes: Int) -> UnsafeMutableRawPointer? {
        guard bytes >= minimumBytes else { return nil }
        lock.lock(); defer { lock.unlock() }
        guard let buffer = idle[bytes]?.popLast() else { return nil }
        idleBytes -= bytes
        return buffer
    }

    /// False when the buffer is too small or the pool is full: the caller frees it.
    func give(_ buffer: UnsafeMutableRawPointer, bytes: Int) -> Bool {
        guard bytes >= minimumBytes else { return false }
        lock.lock(); defer { lock.unlock() }
        guard idleBytes + bytes <= maximumIdleBytes else { return false }
        idle[bytes, default: []].append(buffer)
        idleBytes += bytes
        return true
    }
}

/// A dense, row-major Float32 tensor.
///
/// A `Tensor` is a view: copies of the value share storage, and `reshaped` / `rows` return
/// views of the same memory. Use `copy()` for an independent buffer.
///
/// Usage: `let t = try Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]); t[1, 0] == 3`
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let shape: Shape
    public let storage: TensorStorage
    public let offset: Int

    /// A new tensor filled with zeros.
    public init(zeros shape: Shape) {
        self.shape = shape
        storage = TensorStorage(capacity: shape.count)
        offset = 0
    }

    /// A new tensor whose contents are undefined until written; for outputs a kernel fills.
    public init(uninitialized shape: Shape) {
        self.shape = shape
        storage = TensorStorage(capacity: shape.count, zeroed: false)
        offset = 0
    }

    public init(shape: Shape, repeating value: Float) {
        self.init(uninitialized: shape)
        pointer.update(repeating: value, count: shape.count)
    }

    /// A new tensor holding `scalars` in row-major order; their count must match the shape.
    public init(shape: Shape, scalars: [Float]) throws {
        guard scalars.count == shape.count else {
            throw TensorError.invalidArgument(
                op: "Tensor.init",
                message: "\(scalars.count) values do not fill shape \(shape) (\(shape.count) elements)")
        }
        self.init(uninitialized: shape)
        scalars.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: shape.count) }
    }

    init(shape: Shape, storage: TensorStorage, offset: Int) {
        self.shape = shape
        self.storage = storage
        self.offset = offset
    }

    public var count: Int { shape.count }

    /// The first element of this view. Writes through it are visible to every view of the storage.
    public var pointer: UnsafeMutablePointer<Float> { storage.base + offset }

    public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    /// The elements in row-major order, copied into an array.
    public var scalars: [Float] { Array(buffer) }

    public subscript(flat index: Int) -> Float {
        get { pointer[index] }
        nonmutating set { pointer[index] = newValue }
    }

    public subscript(indices: Int...) -> Float {
        get { pointer[flatIndex(indices)] }
        nonmutating set { pointer[flatIndex(indices)] = newValue }
    }

    private func flatIndex(_ indices: [Int]) -> Int {
        precondition(indices.count == shape.rank, "index rank \(indices.count) for shape \(shape)")
        var flat = 0
        for (axis, i) in indices.enumerated() {
            precondition(i >= 0 && i < shape[axis], "index \(indices) out of range for \(shape)")
            flat = flat * shape[axis] + i
        }
        return flat
    }

    /// The same elements viewed with another shape of equal element count.
    public func reshaped(_ newShape: Shape) throws -> Tensor {
        guard newShape.count == shape.count else {
            throw TensorError.shapeMismatch(op: "reshape", lhs: shape, rhs: newShape)
        }
        return Tensor(shape: newShape, storage: storage, offset: offset)
    }

    /// A view of a range along the first axis.
    public func rows(_ range: Range<Int>) throws -> Tensor {
        guard shape.rank >= 1, range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw TensorError.invalidArgument(
                op: "rows", message: "range \(range) outside first axis of \(shape)")
        }
        let rowSize = shape.count / max(shape[0], 1)
        var dims = shape.dims
        dims[0] = range.count
        return Tensor(shape: Shape(dims), storage: storage, offset: offset + range.lowerBound * rowSize)
    }

    /// An independent copy with its own storage.
    public func copy() -> Tensor {
        let result = Tensor(uninitialized: shape)
        result.pointer.update(from: pointer, count: count)
        return result
    }

    /// Overwrites this view's elements with `other`'s; shapes must have equal element counts.
    public func assign(_ other: Tensor) throws {
        guard other.count == count else {
            throw TensorError.shapeMismatch(op: "assign", lhs: shape, rhs: other.shape)
        }
        pointer.update(from: other.pointer, count: count)
    }

    public func fill(_ value: Float) { pointer.update(repeating: value, count: count) }

    public var description: String {
        let preview = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor\(shape)[\(preview)\(count > 8 ? ", ..." : "")]"
    }
}
