/// Everything that can go wrong while building or using a tokenizer. Each message names the
/// source (file, JSON key or GGUF key) so that the fix is obvious.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// A required key is absent, e.g. `model.vocab` in tokenizer.json or `tokenizer.ggml.tokens` in a GGUF.
    case missingKey(source: String, key: String)
    /// A key is present but holds the wrong kind of value.
    case invalidValue(source: String, key: String, reason: String)
    /// The tokenizer uses a feature this implementation does not support.
    case unsupported(source: String, feature: String, supported: String)
    /// A merge names a piece that is not in the vocabulary.
    case mergeNotInVocabulary(source: String, index: Int, merge: String, missing: String)
    /// A token id outside `0..<vocabularySize`.
    case tokenIDOutOfRange(id: Int32, vocabularySize: Int)
    /// A special token (bos, eos, ...) was named but is not in the vocabulary.
    case unknownSpecialToken(role: String, token: String)

    public var description: String {
        switch self {
        case let .missingKey(source, key):
            return "\(source): required key '\(key)' is missing"
        case let .invalidValue(source, key, reason):
            return "\(source): key '\(key)' is invalid: \(reason)"
        case let .unsupported(source, feature, supported):
            return "\(source): unsupported \(feature); supported: \(supported)"
        case let .mergeNotInVocabulary(source, index, merge, missing):
            return "\(source): merge #\(index) '\(merge)' uses '\(missing)', which is not in the vocabulary"
        case let .tokenIDOutOfRange(id, size):
            return "token id \(id) is outside the vocabulary (0..<\(size)); was the tokenizer loaded from the same model?"
        case let .unknownSpecialToken(role, token):
            return "\(role) token '\(token)' is not in the vocabulary"
        }
    }
}
