// Tokenizers: byte-level BPE and chat templates (in progress).
