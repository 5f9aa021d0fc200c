/// How text is cut into words before BPE merges run inside each word. Each case reproduces the
/// regular expression of one model family exactly, as a hand-written scanner over Unicode scalars
/// (`\p{L}` = general category L*, `\p{N}` = N*, `\s` = the White_Space property):
///
/// - `gpt2`: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// - `smollm`: every `\p{N}` is its own word first, then `gpt2` on the text between digits
///   (Hugging Face `Sequence[Digits(individual_digits), ByteLevel]`; llama.cpp `smollm`).
/// - `llamaBPE`: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// - `qwen2`: as `llamaBPE` but `\p{N}` (single digits) instead of `\p{N}{1,3}`.
///
/// Usage: `PreTokenizer.smollm.words(in: "Hello 42")` -> `["Hello", " ", "4", "2"]`.
public enum PreTokenizer: String, CaseIterable, Sendable {
    case gpt2 = "gpt2"
    case smollm = "smollm"
    case llamaBPE = "llama-bpe"
    case qwen2 = "qwen2"

    /// The GGUF `tokenizer.ggml.pre` name, e.g. "llama-bpe".
    public var ggufName: String { rawValue }

    /// Splits `text` into words (for inspection and tests; `BPETokenizer` uses the scalar-level
    /// entry point directly).
    public func words(in text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var words: [String] = []
        split(scalars) { range in
            words.append(String(String.UnicodeScalarView(scalars[range])))
        }
        return words
    }

    /// Calls `emit` with each word's scalar index range, in order; the ranges tile `scalars`.
    func split(_ scalars: [Unicode.Scalar], emit: (Range<Int>) -> Void) {
        let classes = scalars.map(ScalarClass.init)
        let scanner = WordScanner(scalars: scalars, classes: classes)
        switch self {
        case .gpt2:
            scanner.scanGPT2(0..<scalars.count, emit: emit)
        case .smollm:
            // Digits are isolated first; the text between them is split independently, so a
            // space before a digit ends up as a word of its own ("a 1" -> "a", " ", "1").
            var start = 0
            for index in 0..<scalars.count where classes[index] == .number {
                if start < index { scanner.scanGPT2(start..<index, emit: emit) }
                emit(index..<(index + 1))
                start = index + 1
            }
            if start < scalars.count { scanner.scanGPT2(start..<scalars.count, emit: emit) }
        case .llamaBPE:
            scanner.scanLlama3(0..<scalars.count, maxDigits: 3, emit: emit)
        case .qwen2:
            scanner.scanLlama3(0..<scalars.count, maxDigits: 1, emit: emit)
        }
    }
}

/// The character classes the pre-tokenizer regexes distinguish.
enum ScalarClass: UInt8 {
    case letter, number
    /// U+0020, the only character the ` ?` prefixes accept.
    case space
    /// `\r` or `\n`.
    case newline
    /// Any other White_Space character (tab, NBSP, U+3000, ...).
    case otherWhitespace
    /// `'`, which may start a contraction; otherwise it behaves as `other`.
    case apostrophe
    /// Punctuation, symbols, marks, controls: `[^\s\p{L}\p{N}]`.
    case other

    init(_ scalar: Unicode.Scalar) {
        if scalar.value < 128 {
            self = ScalarClass.ascii[Int(scalar.value)]
            return
        }
        let properties = scalar.properties
        if properties.isWhitespace {
            self = .otherWhitespace
            return
        }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            self = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            self = .number
        default:
            self = .other
        }
    }

    var isWhitespace: Bool { self == .space || self == .newline || self == .otherWhitespace }
    /// `[^\s\p{L}\p{N}]`
    var isOther: Bool { self == .other || self == .apostrophe }

    private static let ascii: [ScalarClass] = (0..<128).map { value in
        switch UInt8(value) {
        case UInt8(ascii: " "): return .space
        case UInt8(ascii: "\n"), UInt8(ascii: "\r"): return .newline
        case 0x09, 0x0B, 0x0C: return .otherWhitespace
        case UInt8(ascii: "'"): return .apostrophe
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): return .letter
        default: return .other
        }
    }
}

/// Leftmost-first regex alternation, hand-compiled: at each position the alternatives are tried
/// in the regex's order and the first that matches decides the word's end.
struct WordScanner {
    let scalars: [Unicode.Scalar]
    let classes: [ScalarClass]

    func scanGPT2(_ range: Range<Int>, emit: (Range<Int>) -> Void) {
        var start = range.lowerBound
        while start < range.upperBound {
            let end = nextGPT2Word(from: start, limit: range.upperBound)
            emit(start..<end)
            start = end
        }
    }

    func scanLlama3(_ range: Range<Int>, maxDigits: Int, emit: (Range<Int>) -> Void) {
        var start = range.lowerBound
        while start < range.upperBound {
            let end = nextLlama3Word(from: start, limit: range.upperBound, maxDigits: maxDigits)
            emit(start..<end)
            start = end
        }
    }

    private func nextGPT2Word(from start: Int, limit: Int) -> Int {
        let first = classes[start]
        // 's|'t|'re|'ve|'m|'ll|'d  (case-sensitive)
        if first == .apostrophe {
            let length = contractionLength(at: start, limit: limit, caseInsensitive: false)
            if length > 0 { return start + length }
        }
        // ' ?' prefix of the next three alternatives
        var body = start
        if first == .space, start + 1 < limit, !classes[start + 1].isWhitespace { body = start + 1 }
        let bodyClass = classes[body]
        if bodyClass == .letter { return run(from: body, limit: limit) { $0 == .letter } }
        if bodyClass == .number { return run(from: body, limit: limit) { $0 == .number } }
        if bodyClass.isOther { return run(from: body, limit: limit) { $0.isOther } }
        return whitespaceWordEnd(from: start, limit: limit, endsAtLastNewline: false)
    }

    private func nextLlama3Word(from start: Int, limit: Int, maxDigits: Int) -> Int {
        let first = classes[start]
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if first == .apostrophe {
            let length = contractionLength(at: start, limit: limit, caseInsensitive: true)
            if length > 0 { return start + length }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if first == .letter { return run(from: start, limit: limit) { $0 == .letter } }
        if first != .newline, first != .number, start + 1 < limit, classes[start + 1] == .letter {
            return run(from: start + 1, limit: limit) { $0 == .letter }
        }
        // \p{N}{1,maxDigits}
        if first == .number {
            var end = start + 1
            while end < limit, end - start < maxDigits, classes[end] == .number { end += 1 }
            return end
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        var body = start
        if first == .space, start + 1 < limit, classes[start + 1].isOther { body = start + 1 }
        if classes[body].isOther {
            let end = run(from: body, limit: limit) { $0.isOther }
            return run(from: end, limit: limit) { $0 == .newline }
        }
        return whitespaceWordEnd(from: start, limit: limit, endsAtLastNewline: true)
    }

    /// The end of the word starting at a whitespace character that no earlier alternative took:
    /// `\s*[\r\n]+` (Llama-3 family only) ends after the run's last newline; `\s+(?!\S)` leaves
    /// the run's last character for the next word (which a ` ?` prefix may then take) unless the
    /// run reaches the end of the text; `\s+` takes a single whitespace character before text.
    private func whitespaceWordEnd(from start: Int, limit: Int, endsAtLastNewline: Bool) -> Int {
        var end = start
        var afterLastNewline = -1
        while end < limit, classes[end].isWhitespace {
            if classes[end] == .newline { afterLastNewline = end + 1 }
            end += 1
        }
        if endsAtLastNewline, afterLastNewline > 0 { return afterLastNewline }
        if end == limit { return end }
        return end - start >= 2 ? end - 1 : end
    }

    private func run(from start: Int, limit: Int, while member: (ScalarClass) -> Bool) -> Int {
        var end = start
        while end < limit, member(classes[end]) { end += 1 }
        return end
    }

    /// Length of `'s|'t|'re|'ve|'m|'ll|'d` at `start` (0 when none matches).
    private func contractionLength(at start: Int, limit: Int, caseInsensitive: Bool) -> Int {
        func letter(_ offset: Int) -> UInt32? {
            let index = start + offset
            guard index < limit else { return nil }
            let value = scalars[index].value
            // ASCII case folding is all the (?i) flag changes for these letters.
            if caseInsensitive, value >= 65, value <= 90 { return value + 32 }
            return value
        }
        guard let second = letter(1) else { return 0 }
        switch second {
        case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
        case 0x72, 0x76: return letter(2) == 0x65 ? 3 : 0  // re ve
        case 0x6C: return letter(2) == 0x6C ? 3 : 0  // ll
        default: return 0
        }
    }
}
