import Foundation

extension BPETokenizer {
    /// This tokenizer as a Hugging Face tokenizer.json (tokenizers' `Tokenizer.from_file`,
    /// transformers' fast tokenizers, and `BPETokenizer(tokenizerJSON:)` read it back).
    ///
    /// Written: the byte-level BPE model (vocab, merges by rank as "left right", `ignore_merges`
    /// for Llama-3), control and user-defined tokens as added tokens (`special` true for
    /// control), the pre-tokenizer of `preTokenizer` (SmolLM2: Sequence[Digits(individual_digits),
    /// ByteLevel(add_prefix_space false, use_regex true)]), NFC when the tokenizer normalises,
    /// a ByteLevel decoder, and no post-processor (BOS is added by the chat template or the
    /// caller, as llama.cpp does for these models).
    ///
    /// Usage: `try tokenizer.tokenizerJSON().write(to: URL(fileURLWithPath: "merged/tokenizer.json"))`
    public func tokenizerJSON() throws -> Data {
        var vocab: [String: Int] = [:]
        var added: [[String: Any]] = []
        for (id, token) in tokens.enumerated() {
            let type = tokenTypes[id]
            if type == .unused { continue }
            if vocab[token] == nil { vocab[token] = id }
            if type == .control || type == .userDefined || type == .unknown {
                added.append([
                    "id": id, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
                    "normalized": type == .userDefined, "special": type != .userDefined,
                ])
            }
        }
        let ordered = merges.sorted { $0.value.rank < $1.value.rank }
        let mergeList: [String] = ordered.map { key, _ in
            "\(tokens[Int(key >> 32)]) \(tokens[Int(key & 0xFFFF_FFFF)])"
        }
        let byteLevel: (Bool) -> [String: Any] = { useRegex in
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": useRegex]
        }
        let preTokenizerJSON: [String: Any]
        switch preTokenizer {
        case .gpt2:
            preTokenizerJSON = byteLevel(true)
        case .smollm:
            preTokenizerJSON = ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel(true)]]
        case .llamaBPE, .qwen2:
            let regex = preTokenizer == .llamaBPE ? Self.llama3SplitRegex : Self.qwen2SplitRegex
            preTokenizerJSON = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": regex], "behavior": "Isolated", "invert": false], byteLevel(false),
            ]]
        }
        let root: [String: Any] = [
            "version": "1.0",
            "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": added,
            "normalizer": normalizesToNFC ? ["type": "NFC"] : NSNull(),
            "pre_tokenizer": preTokenizerJSON,
            "post_processor": NSNull(),
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": unknownID.map { tokens[Int($0)] } ?? NSNull(),
                "continuing_subword_prefix": NSNull(), "end_of_word_suffix": NSNull(), "fuse_unk": false,
                "byte_fallback": false, "ignore_merges": ignoresMergesForWholeWords,
                "vocab": vocab, "merges": mergeList,
            ] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
    }
}
