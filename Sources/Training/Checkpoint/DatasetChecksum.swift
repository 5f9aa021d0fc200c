import CKernels
import Foundation
import ModelFormats
import Tensors

/// A digest of each checkpoint dataset's values, stored beside it as the `checksum` attribute
/// ("fnv1a64:" and 16 hex digits of `tc_hash_bytes` over the values' little-endian bytes).
///
/// A flipped bit that leaves a value finite and in range passes every value check and would be
/// trained on silently (8 of 147 resumes of bit-flipped checkpoints did so before format 3).
/// The digest catches it; the reader then treats the file as damaged and `resume` falls back
/// to the previous checkpoint.
///
/// Usage: `try DatasetChecksum.stamp(file, "/rng", DatasetChecksum.of(words))`
enum DatasetChecksum {
    static let attribute = "checksum"

    static func of(_ bytes: UnsafeRawBufferPointer) -> String {
        let digest = tc_hash_bytes(0xcbf2_9ce4_8422_2325, bytes.baseAddress, bytes.count)
        let hex = String(digest, radix: 16)
        return "fnv1a64:" + String(repeating: "0", count: 16 - hex.count) + hex
    }
    static func of(_ tensor: Tensor) -> String {
        of(UnsafeRawBufferPointer(start: tensor.pointer, count: tensor.count * MemoryLayout<Float>.size))
    }
    static func of<T: FixedWidthInteger>(_ values: [T]) -> String { values.withUnsafeBytes { of($0) } }
    static func of(_ text: String) -> String { Array(text.utf8).withUnsafeBytes { of($0) } }

    static func stamp(_ file: HDF5File, _ dataset: String, _ digest: String) throws {
        try file.setAttribute(attribute, .string(digest), on: dataset)
    }

    /// Throws `CheckpointError.damaged` naming the first dataset whose values (as read into
    /// `state`) do not match its stored digest, or that has none.
    static func verify(_ state: CheckpointState, in file: HDF5File) throws {
        var expected: [(String, String)] = [("/config", of(state.configYAML)), ("/rng", of(state.rngState)),
                                            ("/data/order", of(state.data.order)), ("/data/cursor", of([state.data.cursor])),
                                            ("/data/epoch", of([state.data.epoch]))]
        for (module, w) in state.adapter.modules.sorted(by: { $0.key < $1.key }) {
            expected += [("/adapter/\(module)/lora_A", of(w.a)), ("/adapter/\(module)/lora_B", of(w.b))]
        }
        for (module, m) in state.optimizer.moments.sorted(by: { $0.key < $1.key }) {
            for (name, t) in [("m_A", m.mA), ("v_A", m.vA), ("m_B", m.mB), ("v_B", m.vB)] {
                expected.append(("/optimizer/\(module)/\(name)", of(t)))
            }
        }
        for (dataset, digest) in expected {
            guard (try file.attributeNames(on: dataset)).contains(attribute) else {
                throw CheckpointError.damaged(file: file.path, reason: "\(dataset) has no checksum (format \(CheckpointFormat.version) files stamp every dataset)")
            }
            guard case let .string(stored) = try file.attribute(attribute, on: dataset) else {
                throw CheckpointError.damaged(file: file.path, reason: "\(dataset)'s checksum is not a string")
            }
            guard stored == digest else {
                throw CheckpointError.damaged(
                    file: file.path, reason: "\(dataset) does not match its checksum (stored \(ErrorText.bounded(stored, limit: 40)), computed \(digest)): the file changed after it was written")
            }
        }
    }
}
