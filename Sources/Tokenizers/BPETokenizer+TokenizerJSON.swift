import Foundation

extension BPETokenizer {
    /// Token ids a tokenizer.json may use: 2^24, far above any real vocabulary.
    public static let maximumTokenID = 1 << 24

    /// Loads a Hugging Face tokenizer.json with a byte-level BPE model.
    ///
    /// Recognised pre-tokenizers (anything else fails, naming what was found):
    /// `ByteLevel(use_regex)` -> `.gpt2`; `Sequence[Digits(individual_digits), ByteLevel(use_regex)]`
    /// -> `.smollm`; `Sequence[Split(Llama-3 or Qwen2 regex, Isolated), ByteLevel]` -> `.llamaBPE`
    /// or `.qwen2`. Normalizer: none or NFC. Added tokens with `special: true` become control
    /// tokens (matched only when parsing special tokens), the others user-defined (always matched).
    /// tokenizer.json does not name BOS/EOS (tokenizer_config.json does), so pass them; a BOS
    /// found in a `TemplateProcessing` post-processor is used (and added) when none is given.
    ///
    /// Usage: `try BPETokenizer(tokenizerJSON: data, eosToken: "<|im_end|>")`
    public convenience init(
        tokenizerJSON data: Data, bosToken: String? = nil, eosToken: String? = nil,
        unknownToken: String? = nil, paddingToken: String? = nil, source: String = "tokenizer.json"
    ) throws {
        let root: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw TokenizerError.invalidValue(source: source, key: "(root)", reason: "not a JSON object")
            }
            root = object
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw TokenizerError.invalidValue(source: source, key: "(root)", reason: "not valid JSON: \(error)")
        }
        guard let model = root["model"] as? [String: Any] else {
            throw TokenizerError.missingKey(source: source, key: "model")
        }
        if let type = model["type"] as? String, type != "BPE" {
            throw TokenizerError.unsupported(source: source, feature: "model.type '\(type)'", supported: "BPE")
        }
        if model["byte_fallback"] as? Bool == true {
            throw TokenizerError.unsupported(
                source: source, feature: "model.byte_fallback (SentencePiece-style BPE)", supported: "byte-level BPE")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let affix = model[key] as? String, !affix.isEmpty {
                throw TokenizerError.unsupported(source: source, feature: "model.\(key) '\(affix)'", supported: "none")
            }
        }
        guard let vocab = model["vocab"] as? [String: Any] else {
            throw TokenizerError.missingKey(source: source, key: "model.vocab")
        }
        guard let rawMerges = model["merges"] as? [Any] else {
            throw TokenizerError.missingKey(source: source, key: "model.merges")
        }

        // Vocabulary and added tokens share one id space; added tokens may lie beyond the vocab.
        // The id table is sized by the highest id, so ids are capped before anything is
        // allocated (the largest real vocabularies hold a few hundred thousand tokens).
        var tokenAt: [Int: (String, TokenType)] = [:]
        for (token, value) in vocab {
            guard let id = value as? Int, id >= 0 else {
                throw TokenizerError.invalidValue(source: source, key: "model.vocab[\(token)]", reason: "id is not a non-negative integer")
            }
            guard id < Self.maximumTokenID else {
                throw TokenizerError.invalidValue(source: source, key: "model.vocab[\(token)]",
                                                  reason: "id \(id) is beyond the cap of \(Self.maximumTokenID) token ids")
            }
            tokenAt[id] = (token, .normal)
        }
        for (index, entry) in ((root["added_tokens"] as? [Any]) ?? []).enumerated() {
            guard let added = entry as? [String: Any], let id = added["id"] as? Int, id >= 0,
                let content = added["content"] as? String
            else {
                throw TokenizerError.invalidValue(
                    source: source, key: "added_tokens[\(index)]", reason: "needs an integer 'id' and a string 'content'")
            }
            guard id < Self.maximumTokenID else {
                throw TokenizerError.invalidValue(source: source, key: "added_tokens[\(index)]",
                                                  reason: "id \(id) is beyond the cap of \(Self.maximumTokenID) token ids")
            }
            let special = added["special"] as? Bool ?? false
            tokenAt[id] = (content, special ? .control : .userDefined)
        }
        let size = (tokenAt.keys.max() ?? -1) + 1
        var tokens = [String](repeating: "", count: size)
        var types = [Int32](repeating: TokenType.unused.rawValue, count: size)
        for (id, (token, type)) in tokenAt {
            tokens[id] = token
            types[id] = type.rawValue
        }

        let mergePairs: [(String, String)] = try rawMerges.enumerated().map { index, entry in
            if let text = entry as? String, let pair = Self.splitMerge(text) { return pair }
            if let pair = entry as? [String], pair.count == 2 { return (pair[0], pair[1]) }
            throw TokenizerError.invalidValue(
                source: source, key: "model.merges[\(index)]", reason: "expected \"a b\" or [\"a\", \"b\"]")
        }

        let preTokenizer = try Self.recognisePreTokenizer(root["pre_tokenizer"], source: source)
        let normalizesToNFC = try Self.recogniseNormalizer(root["normalizer"], source: source)
        if let decoder = root["decoder"] as? [String: Any], let type = decoder["type"] as? String, type != "ByteLevel" {
            throw TokenizerError.unsupported(source: source, feature: "decoder '\(type)'", supported: "ByteLevel")
        }

        func id(of token: String?, role: String) throws -> Int32? {
            guard let token else { return nil }
            guard let index = tokens.firstIndex(of: token) else {
                throw TokenizerError.unknownSpecialToken(role: role, token: token)
            }
            return Int32(index)
        }
        let templateBOS = Self.bosFromPostProcessor(root["post_processor"])
        let bos = try id(of: bosToken ?? templateBOS, role: "bos")
        let unk = try id(of: unknownToken ?? (model["unk_token"] as? String), role: "unknown")

        try self.init(
            tokens: tokens, mergePairs: mergePairs, tokenTypes: types, preTokenizer: preTokenizer,
            bos: bos, eos: try id(of: eosToken, role: "eos"), unk: unk, pad: try id(of: paddingToken, role: "padding"),
            addBOS: templateBOS != nil && bos != nil,
            ignoresMergesForWholeWords: model["ignore_merges"] as? Bool ?? false,
            normalizesToNFC: normalizesToNFC, source: source)
    }

    /// The Llama-3 split regex as it appears in tokenizer.json.
    static let llama3SplitRegex =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// The Qwen2 split regex as it appears in tokenizer.json.
    static let qwen2SplitRegex =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    private static let supportedPreTokenizers =
        "ByteLevel(use_regex) = gpt2; Sequence[Digits(individual_digits), ByteLevel(use_regex)] = smollm; "
        + "Sequence[Split(Llama-3 regex, Isolated), ByteLevel] = llama-bpe; Sequence[Split(Qwen2 regex, Isolated), ByteLevel] = qwen2"

    static func recognisePreTokenizer(_ value: Any?, source: String) throws -> PreTokenizer {
        guard let config = value as? [String: Any] else {
            throw TokenizerError.unsupported(
                source: source, feature: "pre_tokenizer null", supported: supportedPreTokenizers)
        }
        let steps: [[String: Any]]
        if config["type"] as? String == "Sequence" {
            steps = (config["pretokenizers"] as? [Any] ?? []).compactMap { $0 as? [String: Any] }
        } else {
            steps = [config]
        }
        let names = steps.map(describe).joined(separator: ", ")
        let unsupported = TokenizerError.unsupported(
            source: source, feature: "pre_tokenizer [\(names)]", supported: supportedPreTokenizers)

        guard let last = steps.last, last["type"] as? String == "ByteLevel",
            last["add_prefix_space"] as? Bool == false
        else { throw unsupported }
        let usesRegex = last["use_regex"] as? Bool ?? true
        let leading = steps.dropLast()
        switch (leading.count, usesRegex) {
        case (0, true):
            return .gpt2
        case (1, true):
            if let digits = leading.first, digits["type"] as? String == "Digits",
                digits["individual_digits"] as? Bool == true
            {
                return .smollm
            }
        case (1, false):
            if let split = leading.first, split["type"] as? String == "Split",
                split["behavior"] as? String == "Isolated", split["invert"] as? Bool ?? false == false,
                let pattern = split["pattern"] as? [String: Any], let regex = pattern["Regex"] as? String
            {
                if regex == llama3SplitRegex { return .llamaBPE }
                if regex == qwen2SplitRegex { return .qwen2 }
            }
        default:
            break
        }
        throw unsupported
    }

    private static func describe(_ step: [String: Any]) -> String {
        let type = step["type"] as? String ?? "?"
        switch type {
        case "Split":
            let pattern = step["pattern"] as? [String: Any]
            let regex = pattern?["Regex"] as? String ?? pattern?["String"] as? String ?? "?"
            return "Split(\(regex), \(step["behavior"] as? String ?? "?"))"
        case "ByteLevel":
            return "ByteLevel(add_prefix_space: \(step["add_prefix_space"] ?? "?"), use_regex: \(step["use_regex"] ?? "?"))"
        case "Digits":
            return "Digits(individual_digits: \(step["individual_digits"] ?? "?"))"
        default:
            return type
        }
    }

    /// True for NFC, false for none; anything else is unsupported.
    static func recogniseNormalizer(_ value: Any?, source: String) throws -> Bool {
        guard let config = value as? [String: Any] else { return false }
        let type = config["type"] as? String ?? "?"
        if type == "NFC" { return true }
        if type == "Sequence", let steps = config["normalizers"] as? [Any], steps.isEmpty { return false }
        throw TokenizerError.unsupported(source: source, feature: "normalizer '\(type)'", supported: "none, NFC")
    }

    /// The first `SpecialToken` of a `TemplateProcessing` single-sequence template, if any.
    static func bosFromPostProcessor(_ value: Any?) -> String? {
        guard let config = value as? [String: Any] else { return nil }
        switch config["type"] as? String {
        case "Sequence":
            for processor in config["processors"] as? [Any] ?? [] {
                if let bos = bosFromPostProcessor(processor) { return bos }
            }
            return nil
        case "TemplateProcessing":
            guard let single = config["single"] as? [Any],
                let first = single.first as? [String: Any],
                let special = first["SpecialToken"] as? [String: Any]
            else { return nil }
            return special["id"] as? String
        default:
            return nil
        }
    }
}
