import CKernels
import Tensors

extension Tape {
    /// Looks up one row of `table` per token id.
    ///
    /// Shapes: ids [n], table [vocab, d] -> [n, d].
    /// Usage: `let h = try tape.embedding(ids, table: tokenEmbeddings)`
    public func embedding(_ ids: [Int32], table: Variable) throws -> Variable {
        guard table.shape.rank == 2 else {
            throw TensorError.invalidShape(op: "embedding", shape: table.shape, expected: "[vocab, d]")
        }
        let vocab = table.shape[0], d = table.shape[1]
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocab }) {
            throw TensorError.invalidArgument(
                op: "embedding", message: "token id \(bad) outside vocabulary of \(vocab)")
        }
        let y = Tensor(uninitialized: [ids.count, d])
        for (r, id) in ids.enumerated() {
            (y.pointer + r * d).update(from: table.value.pointer + Int(id) * d, count: d)
        }
        let st = table.slot
        return output(y, op: "embedding", inputs: [table]) { dy in
            // dtable[id] += dy[r] for every occurrence of id
            guard st.requiresGrad else { return }
            let dt = st.buffer().pointer
            for (r, id) in ids.enumerated() { tc_axpy(1, dy.pointer + r * d, dt + Int(id) * d, d) }
        }
    }
}
