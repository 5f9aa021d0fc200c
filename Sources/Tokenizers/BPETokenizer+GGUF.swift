import ModelFormats

extension PreTokenizer {
    /// The pre-tokenizer for a GGUF `tokenizer.ggml.pre` name, including llama.cpp's aliases;
    /// nil for names this package does not implement.
    public init?(ggufName name: String) {
        switch name {
        case "gpt2", "gpt-2": self = .gpt2
        case "smollm": self = .smollm
        case "llama-bpe", "llama3", "llama-v3": self = .llamaBPE
        case "qwen2", "deepseek-r1-qwen": self = .qwen2
        default: return nil
        }
    }
}

extension BPETokenizer {
    /// Builds the tokenizer stored in a GGUF file's `tokenizer.ggml.*` metadata.
    ///
    /// Usage: `try BPETokenizer(gguf: GGUFFile(path: "checkpoints/base/SmolLM2-135M-Instruct.Q4_1.gguf"))`
    public convenience init(gguf file: GGUFFile) throws {
        let source = file.path
        let metadata = file.metadata
        func required<T>(_ key: String, _ kind: String, _ read: (GGUFMetadataValue) -> T?) throws -> T {
            guard let value = metadata[key] else { throw TokenizerError.missingKey(source: source, key: key) }
            guard let typed = read(value) else {
                throw TokenizerError.invalidValue(source: source, key: key, reason: "expected \(kind)")
            }
            return typed
        }
        func optionalID(_ key: String) throws -> Int32? {
            guard let value = metadata[key] else { return nil }
            guard let id = value.intValue, let id32 = Int32(exactly: id) else {
                throw TokenizerError.invalidValue(source: source, key: key, reason: "expected a token id")
            }
            return id32
        }

        let model = try required("tokenizer.ggml.model", "a string", \.stringValue)
        guard model == "gpt2" else {
            throw TokenizerError.unsupported(
                source: source, feature: "tokenizer.ggml.model '\(model)'", supported: "gpt2 (byte-level BPE)")
        }
        let supportedNames = PreTokenizer.allCases.map(\.ggufName).joined(separator: ", ")
        guard let preName = metadata["tokenizer.ggml.pre"]?.stringValue else {
            throw TokenizerError.missingKey(source: source, key: "tokenizer.ggml.pre (one of \(supportedNames))")
        }
        guard let preTokenizer = PreTokenizer(ggufName: preName) else {
            throw TokenizerError.unsupported(
                source: source, feature: "tokenizer.ggml.pre '\(preName)'", supported: supportedNames)
        }
        let tokens = try required("tokenizer.ggml.tokens", "an array of strings", \.stringArray)
        let merges = try required("tokenizer.ggml.merges", "an array of strings", \.stringArray)
        var tokenTypes: [Int32]?
        if let value = metadata["tokenizer.ggml.token_type"] {
            guard let types = value.intArray?.compactMap(Int32.init(exactly:)), types.count == value.arrayValue?.count
            else {
                throw TokenizerError.invalidValue(
                    source: source, key: "tokenizer.ggml.token_type", reason: "expected an array of integers")
            }
            tokenTypes = types
        }
        // llama.cpp adds BOS by default for the Llama-3 family only.
        let addBOS = metadata["tokenizer.ggml.add_bos_token"]?.boolValue ?? (preTokenizer == .llamaBPE)

        try self.init(
            tokens: tokens, merges: merges, tokenTypes: tokenTypes, preTokenizer: preTokenizer,
            bos: try optionalID("tokenizer.ggml.bos_token_id"), eos: try optionalID("tokenizer.ggml.eos_token_id"),
            unk: try optionalID("tokenizer.ggml.unknown_token_id"),
            pad: try optionalID("tokenizer.ggml.padding_token_id"), addBOS: addBOS,
            // llama.cpp sets ignore_merges for the Llama-3 pre-tokenizer, as its tokenizer.json does.
            ignoresMergesForWholeWords: preTokenizer == .llamaBPE, source: source)
    }
}

extension ChatTemplate {
    /// The chat template in a GGUF file's `tokenizer.chat_template`: a built-in ChatML variant
    /// when it is one, else the Jinja template itself, with the file's BOS and EOS spellings.
    ///
    /// Usage: `let template = try ChatTemplate(gguf: file)`
    public init(gguf file: GGUFFile) throws {
        let key = "tokenizer.chat_template"
        guard let source = file.metadata[key]?.stringValue else {
            throw TokenizerError.missingKey(source: file.path, key: key)
        }
        let tokens = file.metadata["tokenizer.ggml.tokens"]?.stringArray
        func spelling(_ idKey: String) -> String? {
            guard let id = file.metadata[idKey]?.intValue, let tokens, id >= 0, id < tokens.count else { return nil }
            return tokens[id]
        }
        do {
            self = try ChatTemplate(jinja: source, bosToken: spelling("tokenizer.ggml.bos_token_id"), eosToken: spelling("tokenizer.ggml.eos_token_id"))
        } catch let error as JinjaError {
            throw TokenizerError.unsupported(
                source: file.path, feature: "\(key) (\(error))",
                supported: "the ChatML family built in, and Jinja templates within the subset of docs/chat-templates.md")
        }
    }
}
