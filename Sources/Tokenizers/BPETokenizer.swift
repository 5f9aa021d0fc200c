import Foundation

/// GGUF `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
public enum TokenType: Int32, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

/// A byte-level BPE tokenizer (GPT-2 family: SmolLM2, Llama-3, Qwen2/2.5/3).
///
/// Encoding: special tokens are matched as whole strings first; the text between them is
/// normalised (only when tokenizer.json asks for NFC), cut into words by the `PreTokenizer`,
/// and each word's UTF-8 bytes are merged by rank. Results are cached per word.
///
/// Usage:
/// ```
/// let tokenizer = try BPETokenizer(tokenizerJSON: Data(contentsOf: url))
/// let ids = tokenizer.encode("<|im_start|>user\nHi<|im_end|>")
/// let text = try tokenizer.decode(ids)
/// ```
public final class BPETokenizer: @unchecked Sendable {
    // @unchecked: every stored property is immutable except `wordCache`, which guards itself.

    /// Vocabulary spellings, indexed by token id (byte-level characters for normal tokens).
    public let tokens: [String]
    public let tokenTypes: [TokenType]
    public let preTokenizer: PreTokenizer
    public let bosID: Int32?
    public let eosID: Int32?
    public let unknownID: Int32?
    public let paddingID: Int32?
    /// Whether `encode` prepends `bosID` by default.
    public let addBOS: Bool
    /// Llama-3's `ignore_merges`: a word that is itself a vocabulary entry becomes that token
    /// without running merges.
    public let ignoresMergesForWholeWords: Bool
    /// Unicode NFC before pre-tokenisation (Qwen2's tokenizer.json asks for it; GGUF has no such key).
    public let normalizesToNFC: Bool

    public var vocabularySize: Int { tokens.count }

    private let idForToken: [String: Int32]
    /// The raw bytes each token stands for (what `decode` concatenates).
    private let bytesForToken: [[UInt8]]
    /// The token of each single byte, or -1 when the vocabulary lacks it.
    private let tokenForByte: [Int32]
    /// (left id << 32 | right id) -> merge rank and merged id.
    let merges: [UInt64: Merge]
    private let specialMatcher: SpecialTokenMatcher
    private let wordCache = WordCache()

    struct Merge {
        let rank: Int32
        let merged: Int32
    }

    /// Builds a tokenizer from vocabulary arrays (the GGUF layout).
    ///
    /// Usage: `try BPETokenizer(tokens: ["a", "b", "ab"], merges: ["a b"], preTokenizer: .gpt2)`
    /// - Parameters:
    ///   - tokens: vocabulary spellings indexed by id, byte-level encoded ("Ġthe").
    ///   - merges: "left right" pairs, highest priority first.
    ///   - tokenTypes: GGUF token types; nil treats every token as normal.
    ///   - source: names the origin in error messages (a file path or "tokenizer.json").
    public convenience init(
        tokens: [String], merges: [String], tokenTypes: [Int32]? = nil, preTokenizer: PreTokenizer,
        bos: Int32? = nil, eos: Int32? = nil, unk: Int32? = nil, pad: Int32? = nil, addBOS: Bool = false,
        ignoresMergesForWholeWords: Bool = false, normalizesToNFC: Bool = false,
        source: String = "tokenizer"
    ) throws {
        let parsedMerges = try merges.enumerated().map { index, merge -> (String, String) in
            guard let pair = Self.splitMerge(merge) else {
                throw TokenizerError.invalidValue(
                    source: source, key: "merges[\(index)]",
                    reason: "'\(merge)' is not two pieces separated by one space")
            }
            return pair
        }
        try self.init(
            tokens: tokens, mergePairs: parsedMerges, tokenTypes: tokenTypes, preTokenizer: preTokenizer,
            bos: bos, eos: eos, unk: unk, pad: pad, addBOS: addBOS,
            ignoresMergesForWholeWords: ignoresMergesForWholeWords, normalizesToNFC: normalizesToNFC,
            source: source)
    }

    init(
        tokens: [String], mergePairs: [(String, String)], tokenTypes rawTypes: [Int32]?,
        preTokenizer: PreTokenizer, bos: Int32?, eos: Int32?, unk: Int32?, pad: Int32?, addBOS: Bool,
        ignoresMergesForWholeWords: Bool, normalizesToNFC: Bool, source: String
    ) throws {
        if let rawTypes, rawTypes.count != tokens.count {
            throw TokenizerError.invalidValue(
                source: source, key: "token_type",
                reason: "has \(rawTypes.count) entries for \(tokens.count) tokens")
        }
        let types: [TokenType] = try (rawTypes ?? []).enumerated().map { index, raw in
            guard let type = TokenType(rawValue: raw) else {
                throw TokenizerError.invalidValue(
                    source: source, key: "token_type[\(index)]", reason: "\(raw) is not a token type (0...6)")
            }
            return type
        }
        let tokenTypes = rawTypes == nil ? [TokenType](repeating: .normal, count: tokens.count) : types

        for (role, id) in [("bos", bos), ("eos", eos), ("unknown", unk), ("padding", pad)] {
            if let id, id < 0 || Int(id) >= tokens.count {
                throw TokenizerError.invalidValue(
                    source: source, key: "\(role) token id",
                    reason: "\(id) is outside the vocabulary of \(tokens.count) tokens")
            }
        }

        var idForToken: [String: Int32] = [:]
        idForToken.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() where !token.isEmpty {
            // Keep the first id when a spelling repeats, as llama.cpp does.
            if idForToken[token] == nil { idForToken[token] = Int32(id) }
        }

        var mergeTable: [UInt64: Merge] = [:]
        mergeTable.reserveCapacity(mergePairs.count)
        for (rank, (left, right)) in mergePairs.enumerated() {
            let spelled = left + " " + right
            guard let leftID = idForToken[left] else {
                throw TokenizerError.mergeNotInVocabulary(source: source, index: rank, merge: spelled, missing: left)
            }
            guard let rightID = idForToken[right] else {
                throw TokenizerError.mergeNotInVocabulary(source: source, index: rank, merge: spelled, missing: right)
            }
            guard let mergedID = idForToken[left + right] else {
                throw TokenizerError.mergeNotInVocabulary(
                    source: source, index: rank, merge: spelled, missing: left + right)
            }
            let key = UInt64(UInt32(bitPattern: leftID)) << 32 | UInt64(UInt32(bitPattern: rightID))
            // A repeated pair keeps its first (highest-priority) rank.
            if mergeTable[key] == nil { mergeTable[key] = Merge(rank: Int32(rank), merged: mergedID) }
        }

        var tokenForByte = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            if let id = idForToken[String(ByteLevel.characterForByte[byte])] { tokenForByte[byte] = id }
        }

        self.tokens = tokens
        self.tokenTypes = tokenTypes
        self.preTokenizer = preTokenizer
        self.bosID = bos
        self.eosID = eos
        self.unknownID = unk
        self.paddingID = pad
        self.addBOS = addBOS
        self.ignoresMergesForWholeWords = ignoresMergesForWholeWords
        self.normalizesToNFC = normalizesToNFC
        self.idForToken = idForToken
        self.merges = mergeTable
        self.tokenForByte = tokenForByte
        self.bytesForToken = zip(tokens, tokenTypes).map { token, type in
            switch type {
            case .control, .userDefined, .unknown:
                // Added tokens are stored as plain text, not in the byte-level alphabet.
                return Array(token.utf8)
            default:
                return ByteLevel.decode(token)
            }
        }
        self.specialMatcher = SpecialTokenMatcher(tokens: tokens, types: tokenTypes)
    }

    /// "a b" -> ("a", "b"); nil unless exactly one space separates two non-empty pieces.
    static func splitMerge(_ merge: String) -> (String, String)? {
        let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    // MARK: - Lookup

    /// The id of a vocabulary spelling, e.g. `tokenID(for: "<|im_end|>")`.
    public func tokenID(for token: String) -> Int32? { idForToken[token] }

    /// Whether `id` is a control, unknown or user-defined token (matched whole, never merged).
    public func isSpecial(_ id: Int32) -> Bool {
        guard id >= 0, Int(id) < tokens.count else { return false }
        switch tokenTypes[Int(id)] {
        case .control, .unknown, .userDefined: return true
        default: return false
        }
    }

    /// The raw bytes token `id` stands for.
    public func tokenBytes(_ id: Int32) throws -> [UInt8] {
        guard id >= 0, Int(id) < tokens.count else {
            throw TokenizerError.tokenIDOutOfRange(id: id, vocabularySize: tokens.count)
        }
        return bytesForToken[Int(id)]
    }

    /// The text of one token, e.g. " the" for "Ġthe". A piece holding part of a multi-byte
    /// character shows U+FFFD; use `decode` on the whole sequence to reassemble it.
    public func tokenPiece(_ id: Int32) throws -> String {
        String(decoding: try tokenBytes(id), as: UTF8.self)
    }

    // MARK: - Encoding

    /// Token ids for `text`.
    ///
    /// Usage: `tokenizer.encode("<|im_start|>user\nHi", parseSpecialTokens: true)`
    /// - Parameters:
    ///   - parseSpecialTokens: match control tokens such as `<|im_start|>` in the text; when false
    ///     they are tokenised as ordinary text (user-defined tokens are always matched, as in
    ///     llama.cpp and Hugging Face).
    ///   - addBOS: prepend the BOS token; nil uses the tokenizer's `addBOS`.
    public func encode(_ text: String, parseSpecialTokens: Bool = true, addBOS: Bool? = nil) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(text.utf8.count / 3 + 1)
        if addBOS ?? self.addBOS, let bosID { ids.append(bosID) }
        let bytes = Array(text.utf8)
        specialMatcher.split(bytes, parseSpecial: parseSpecialTokens) { piece in
            switch piece {
            case let .special(id, _):
                ids.append(id)
            case let .text(range):
                encodeOrdinaryText(bytes[range], into: &ids)
            }
        }
        return ids
    }

    /// Where `encode(text, parseSpecialTokens: true)` would match special tokens: UTF-8 byte
    /// ranges of `text` and their ids, left to right.
    ///
    /// Usage: `tokenizer.specialTokenRanges(in: "<|im_start|>user")  // [(0..<12, 1)]`
    public func specialTokenRanges(in text: String) -> [(range: Range<Int>, id: Int32)] {
        var found: [(range: Range<Int>, id: Int32)] = []
        specialMatcher.split(Array(text.utf8), parseSpecial: true) { piece in
            if case let .special(id, range) = piece { found.append((range, id)) }
        }
        return found
    }

    private func encodeOrdinaryText(_ utf8: ArraySlice<UInt8>, into ids: inout [Int32]) {
        var segment = Array(utf8)
        if normalizesToNFC {
            let text = String(decoding: segment, as: UTF8.self)
            segment = Array(text.precomposedStringWithCanonicalMapping.utf8)
        }
        let (scalars, byteOffsets) = Self.decodeScalars(segment)
        preTokenizer.split(scalars) { wordRange in
            let word = segment[byteOffsets[wordRange.lowerBound]..<byteOffsets[wordRange.upperBound]]
            encodeWord(word, into: &ids)
        }
    }

    /// Scalars of valid UTF-8 plus the byte offset of each (and of the end).
    private static func decodeScalars(_ bytes: [UInt8]) -> ([Unicode.Scalar], [Int]) {
        var scalars: [Unicode.Scalar] = []
        var offsets: [Int] = []
        scalars.reserveCapacity(bytes.count)
        offsets.reserveCapacity(bytes.count + 1)
        var index = 0
        while index < bytes.count {
            let lead = bytes[index]
            let length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            var value: UInt32
            switch length {
            case 1: value = UInt32(lead)
            case 2: value = UInt32(lead & 0x1F)
            case 3: value = UInt32(lead & 0x0F)
            default: value = UInt32(lead & 0x07)
            }
            var next = index + 1
            while next < index + length, next < bytes.count {
                value = value << 6 | UInt32(bytes[next] & 0x3F)
                next += 1
            }
            offsets.append(index)
            scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            index = next
        }
        offsets.append(bytes.count)
        return (scalars, offsets)
    }

    private func encodeWord(_ word: ArraySlice<UInt8>, into ids: inout [Int32]) {
        if word.count == 1 {
            appendByteToken(word[word.startIndex], into: &ids)
            return
        }
        let key = Array(word)
        if let cached = wordCache.lookup(key) {
            ids.append(contentsOf: cached)
            return
        }
        let result = mergeWord(key)
        wordCache.store(key, result)
        ids.append(contentsOf: result)
    }

    private func appendByteToken(_ byte: UInt8, into ids: inout [Int32]) {
        let id = tokenForByte[Int(byte)]
        if id >= 0 {
            ids.append(id)
        } else if let unknownID {
            ids.append(unknownID)
        }
        // Otherwise the byte is dropped, as Hugging Face does for a BPE model without unk_token.
    }

    /// Applies merges by rank (lowest first, leftmost on ties) with a min-heap of candidate pairs
    /// over a linked list of symbols; stale heap entries are recognised and skipped.
    private func mergeWord(_ word: [UInt8]) -> [Int32] {
        if ignoresMergesForWholeWords, let id = idForToken[ByteLevel.encode(word)] { return [id] }

        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        for byte in word {
            let id = tokenForByte[Int(byte)]
            if id >= 0 {
                symbols.append(id)
            } else if let unknownID {
                symbols.append(unknownID)
            }
        }
        let count = symbols.count
        if count < 2 { return symbols }

        var next = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count { buffer[index] = index + 1 < count ? Int32(index + 1) : -1 }
            initialized = count
        }
        var previous = (0..<count).map { Int32($0) - 1 }
        var alive = [Bool](repeating: true, count: count)
        var heap = PairHeap()

        func rank(_ left: Int32, _ right: Int32) -> Merge? {
            merges[UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))]
        }
        for index in 0..<(count - 1) {
            if let merge = rank(symbols[index], symbols[index + 1]) { heap.push(rank: merge.rank, position: index) }
        }
        while let (mergeRank, position) = heap.pop() {
            guard alive[position] else { continue }
            let right = Int(next[position])
            guard right >= 0, let merge = rank(symbols[position], symbols[right]), merge.rank == mergeRank else {
                continue
            }
            symbols[position] = merge.merged
            alive[right] = false
            next[position] = next[right]
            if next[right] >= 0 { previous[Int(next[right])] = Int32(position) }
            let left = Int(previous[position])
            if left >= 0, let candidate = rank(symbols[left], symbols[position]) {
                heap.push(rank: candidate.rank, position: left)
            }
            let after = Int(next[position])
            if after >= 0, let candidate = rank(symbols[position], symbols[after]) {
                heap.push(rank: candidate.rank, position: position)
            }
        }
        var result: [Int32] = []
        var index = 0
        while index >= 0 {
            result.append(symbols[index])
            index = Int(next[index])
        }
        return result
    }

    // MARK: - Decoding

    /// The text of `ids`: token bytes are concatenated and decoded as UTF-8 once at the end, so
    /// a character split over several tokens comes back whole; only bytes that are still not
    /// valid UTF-8 become U+FFFD.
    ///
    /// Usage: `try tokenizer.decode(ids, skipSpecialTokens: true)`
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) throws -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids {
            guard id >= 0, Int(id) < tokens.count else {
                throw TokenizerError.tokenIDOutOfRange(id: id, vocabularySize: tokens.count)
            }
            if skipSpecialTokens, tokenTypes[Int(id)] == .control { continue }
            bytes.append(contentsOf: bytesForToken[Int(id)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A binary min-heap of (rank, position) packed into one UInt64, so that ordering by the packed
/// value is ordering by rank, then by position (leftmost first).
struct PairHeap {
    private var storage: [UInt64] = []

    mutating func push(rank: Int32, position: Int) {
        storage.append(UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(position))
        var child = storage.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if storage[parent] <= storage[child] { break }
            storage.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> (Int32, Int)? {
        guard let top = storage.first else { return nil }
        let last = storage.removeLast()
        if !storage.isEmpty {
            storage[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                if left >= storage.count { break }
                let right = left + 1
                let smaller = right < storage.count && storage[right] < storage[left] ? right : left
                if storage[parent] <= storage[smaller] { break }
                storage.swapAt(parent, smaller)
                parent = smaller
            }
        }
        return (Int32(truncatingIfNeeded: top >> 32), Int(top & 0xFFFF_FFFF))
    }
}

/// Per-word merge results. Bounded: cleared when full, since natural text reuses a small set of
/// words and an adversarial stream should not grow memory without limit.
final class WordCache: @unchecked Sendable {
    private var entries: [[UInt8]: [Int32]] = [:]
    private let lock = NSLock()
    private let capacity = 200_000

    func lookup(_ word: [UInt8]) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return entries[word]
    }

    func store(_ word: [UInt8], _ ids: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[word] = ids
    }
}

/// Finds special tokens in UTF-8 text: at each position the longest matching token wins, and the
/// scan is left to right (Hugging Face's leftmost-longest added-token matching).
struct SpecialTokenMatcher {
    enum Piece {
        case special(Int32, Range<Int>)
        case text(Range<Int>)
    }

    private struct Candidate {
        let bytes: [UInt8]
        let id: Int32
        /// Control and unknown tokens need `parseSpecial`; user-defined ones always match.
        let needsParseSpecial: Bool
    }

    /// Candidates by first byte, longest first.
    private let candidatesByFirstByte: [[Candidate]]
    private let isEmpty: Bool

    init(tokens: [String], types: [TokenType]) {
        var table = [[Candidate]](repeating: [], count: 256)
        for (id, (token, type)) in zip(tokens, types).enumerated() {
            let needsParseSpecial: Bool
            switch type {
            case .control, .unknown: needsParseSpecial = true
            case .userDefined: needsParseSpecial = false
            default: continue
            }
            let bytes = Array(token.utf8)
            guard let first = bytes.first else { continue }
            table[Int(first)].append(Candidate(bytes: bytes, id: Int32(id), needsParseSpecial: needsParseSpecial))
        }
        for index in table.indices { table[index].sort { $0.bytes.count > $1.bytes.count } }
        candidatesByFirstByte = table
        isEmpty = table.allSatisfy(\.isEmpty)
    }

    func split(_ bytes: [UInt8], parseSpecial: Bool, emit: (Piece) -> Void) {
        if isEmpty {
            if !bytes.isEmpty { emit(.text(0..<bytes.count)) }
            return
        }
        var textStart = 0
        var index = 0
        while index < bytes.count {
            var matched: Candidate?
            for candidate in candidatesByFirstByte[Int(bytes[index])]
            where (parseSpecial || !candidate.needsParseSpecial) && matches(candidate.bytes, in: bytes, at: index) {
                matched = candidate
                break
            }
            if let matched {
                if textStart < index { emit(.text(textStart..<index)) }
                emit(.special(matched.id, index..<(index + matched.bytes.count)))
                index += matched.bytes.count
                textStart = index
            } else {
                index += 1
            }
        }
        if textStart < bytes.count { emit(.text(textStart..<bytes.count)) }
    }

    private func matches(_ pattern: [UInt8], in bytes: [UInt8], at start: Int) -> Bool {
        guard start + pattern.count <= bytes.count else { return false }
        for offset in 0..<pattern.count where bytes[start + offset] != pattern[offset] { return false }
        return true
    }
}
