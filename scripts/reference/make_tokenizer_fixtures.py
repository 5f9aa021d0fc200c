#!/usr/bin/env python3
"""Writes the reference fixtures for TokenizersTests (Tests/TokenizersTests/Fixtures/).

Run from the package root with the reference venv (torch, transformers, tokenizers, gguf):
    scripts/fetch-model.sh
    .venv-ref/bin/python scripts/reference/make_tokenizer_fixtures.py

Outputs:
  smollm2_ids.json        ids and decoded text of CORPUS under the SmolLM2 tokenizer from the real GGUF
  smollm2_chat.json       SmolLM2 chat template renderings (text and ids) via apply_chat_template
  llama3_tiny_tokenizer.json, llama3_tiny_ids.json
  qwen2_tiny_tokenizer.json,  qwen2_tiny_ids.json
                          tiny byte-level BPEs trained here with the exact Llama-3 / Qwen2
                          pre-tokenizer configurations, and their ids for CORPUS

SmolLM2 note: transformers' GGUF converter builds a plain ByteLevel pre-tokenizer and drops the
individual-digit split that SmolLM2's own tokenizer.json (Sequence[Digits(individual_digits),
ByteLevel]) and llama.cpp's `smollm` pre-tokenizer apply. We restore that split on the loaded
tokenizer so that the reference is what the model was trained with; the vocabulary and merges
are the GGUF's.
"""
import json
import os
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "Tests", "TokenizersTests", "Fixtures")
CHECKPOINT = os.path.join(ROOT, "checkpoints", "base")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

LLAMA3_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

CORPUS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces and trailing  ",
    "multiple   internal    spaces",
    "tabs\tand\ttabs\t\tdouble",
    "line one\nline two\n\nline four\n\n\n",
    "windows\r\nline endings\r\n\r\nend",
    "I'm sure they'll say it's fine, don't you think? We've seen it. I'd go.",
    "SHOUTING: I'M HERE, YOU'RE THERE, WE'LL SEE, IT'S 'QUOTED'",
    "Numbers: 0 7 42 123 1234 12345678901234567890",
    "Pi is 3.14159265358979, e is 2.71828; 1,000,000 and 1.5e-10",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))",
    "for (int i = 0; i < n; ++i) {\n\tsum += x[i] * y[i];\n}",
    '{"key": [1, 2, 3], "nested": {"a": null}}',
    "Café naïve résumé façade Ångström",
    "e\u0301 combining acute vs \u00e9 precomposed",
    "你好，世界！这是一个测试。",
    "日本語のテキストとカタカナ",
    "한국어 텍스트입니다",
    "Здравствуй, мир! Привет.",
    "مرحبا بالعالم",
    "Emoji: 😀 👍🏽 🇫🇷 ❤️",
    "Family: 👨‍👩‍👧‍👦 and 🏳️‍🌈 flags",
    "<|im_start|>user\nHi<|im_end|>\n",
    "<|im_start|>assistant\nHello! How can I help?<|im_end|>",
    "<|endoftext|>text after eot",
    "fake <|im_start special and <|unknown|> tags",
    "<think>\nreasoning\n</think>\n\nanswer",
    "mixed\t \n \t\nwhitespace  \t  runs",
    "   ",
    "\n\n\n",
    "",
    "a",
    "URL: https://example.com/path?q=1&r=two#frag",
    "email@example.org, @mention #hashtag $100 50% ~tilde^caret|pipe",
    "Ünïcödé ÜBER straße ǅ titlecase ſ long s",
    "x²+y³=z¹⁰ ½ ¾ Ⅻ roman ٣ arabic-indic",
    "\u00a0nbsp\u3000ideographic\u2003em space",
    "It's 5 o'clock; 'tis the season. rock'n'roll",
    "A very long word: supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Repeated: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ........ ------- =======",
    "Mixed 3D-printing in 2024, v1.2.3-beta, x86_64, COVID-19",
    "Zero\u200bwidth\u200dnon\u200cjoiners and \u0000 nul \u007f del \u001b esc",
]

# Strings whose every id-prefix is decoded too: decoding must reassemble characters split over
# tokens and show U+FFFD only for a character that is still incomplete.
PREFIX_DECODE_TEXTS = ["Family: 👨‍👩‍👧‍👦 and 🏳️‍🌈 flags", "你好，世界！"]

CONVERSATIONS = [
    ("user_only", [{"role": "user", "content": "What is 2+2?"}]),
    ("with_system", [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
    ]),
    ("multi_turn", [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "Write a haiku about tokens.\nMake it short."},
        {"role": "assistant", "content": "Bytes merge into words,\nranks decide the order —\nids march in a row."},
    ]),
    ("code_and_numbers", [
        {"role": "user", "content": "Sum 12345 and 678 in Python."},
        {"role": "assistant", "content": "```python\nprint(12345 + 678)\n```\nThat prints 13023."},
    ]),
    ("unicode", [
        {"role": "system", "content": "Réponds en français. 🇫🇷"},
        {"role": "user", "content": "Ça va ? 你好"},
        {"role": "assistant", "content": "Très bien, merci ! 😀"},
    ]),
]


def write_json(name, value):
    path = os.path.join(FIXTURES, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def id_cases(backend, corpus):
    cases = []
    for text in corpus:
        ids = backend.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "decoded": backend.decode(ids, skip_special_tokens=False)})
    return cases


def prefix_decodes(backend):
    result = []
    for text in PREFIX_DECODE_TEXTS:
        ids = backend.encode(text, add_special_tokens=False).ids
        for k in range(1, len(ids) + 1):
            result.append({"ids": ids[:k], "decoded": backend.decode(ids[:k], skip_special_tokens=False)})
    return result


def smollm2():
    if not os.path.exists(os.path.join(CHECKPOINT, GGUF_NAME)):
        sys.exit("run scripts/fetch-model.sh to fetch the base model")
    tokenizer = AutoTokenizer.from_pretrained(CHECKPOINT, gguf_file=GGUF_NAME)
    backend = tokenizer.backend_tokenizer
    plain_ids = [backend.encode(t, add_special_tokens=False).ids for t in CORPUS]
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    cases = id_cases(backend, CORPUS)
    differing = [c["text"] for c, plain in zip(cases, plain_ids) if c["ids"] != plain]
    print(f"SmolLM2: {len(differing)} corpus strings tokenise differently without the digit split")
    write_json("smollm2_ids.json", {
        "source": f"{GGUF_NAME} via transformers AutoTokenizer(gguf_file=...), pre_tokenizer "
                  "Sequence[Digits(individual_digits), ByteLevel] restored; encode(add_special_tokens=False)",
        "pre_tokenizer": "smollm",
        "cases": cases,
        "prefix_decodes": prefix_decodes(backend),
    })

    chats = []
    for name, messages in CONVERSATIONS:
        for add_generation_prompt in (False, True):
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
            chats.append({
                "name": name, "messages": messages, "add_generation_prompt": add_generation_prompt,
                "text": text, "ids": backend.encode(text, add_special_tokens=False).ids,
            })
    write_json("smollm2_chat.json", {
        "source": f"{GGUF_NAME} tokenizer.chat_template via transformers apply_chat_template(tokenize=False); "
                  "ids = encode(text) with the digit split restored",
        "conversations": chats,
    })


TRAINING_TEXT = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away.",
    "Tokenizers split text into words, then merge bytes into tokens by rank.",
    "It's a test: they'll see what we've done, and I'm sure you're right. I'd agree.",
    "def tokenize(text):\n    return [ord(c) for c in text]\n\nprint(tokenize('hello'))",
    "Numbers like 1234, 2024 and 3.14159 appear in text; so do 42 and 7.",
    "Café, naïve, résumé — accents matter. 你好，世界！ Привет, мир! 😀👍",
    "Whitespace\tmatters\ttoo.\n\nNew paragraphs start after blank lines.\r\nWindows ends lines so.",
    "Language models read tokens, predict the next token, and learn from their mistakes.",
] * 4 + CORPUS


def train_tiny(pre_tokenizer, special_tokens, added_tokens, normalizer, ignore_merges, vocab_size):
    tokenizer = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=special_tokens, show_progress=False)
    tokenizer.train_from_iterator(TRAINING_TEXT, trainer)
    if added_tokens:
        tokenizer.add_tokens(added_tokens)
    return tokenizer


def tiny_fixture(name, tokenizer, merges_as_strings, pre_tokenizer_name):
    config = json.loads(tokenizer.to_str())
    if merges_as_strings:
        config["model"]["merges"] = [" ".join(pair) if isinstance(pair, list) else pair for pair in config["model"]["merges"]]
    write_json(f"{name}_tokenizer.json", config)
    reloaded = Tokenizer.from_str(json.dumps(config))
    cases = id_cases(reloaded, CORPUS)
    for case in cases:
        case["ids_with_special_tokens_added"] = reloaded.encode(case["text"], add_special_tokens=True).ids
    write_json(f"{name}_ids.json", {
        "source": f"scripts/reference/make_tokenizer_fixtures.py: tokenizers {__import__('tokenizers').__version__}, "
                  f"{name}_tokenizer.json, encode(add_special_tokens=False)",
        "pre_tokenizer": pre_tokenizer_name,
        "merges": len(config["model"]["merges"]),
        "cases": cases,
    })


def llama3_tiny():
    specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    tokenizer = train_tiny(
        pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]),
        special_tokens=specials, added_tokens=[], normalizer=None, ignore_merges=True, vocab_size=256 + 2 + 400)
    bos = tokenizer.token_to_id("<|begin_of_text|>")
    tokenizer.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    tiny_fixture("llama3_tiny", tokenizer, merges_as_strings=False, pre_tokenizer_name="llama-bpe")


def qwen2_tiny():
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = train_tiny(
        pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]),
        special_tokens=specials, added_tokens=["<think>", "</think>"], normalizer=normalizers.NFC(),
        ignore_merges=False, vocab_size=256 + 3 + 400)
    tiny_fixture("qwen2_tiny", tokenizer, merges_as_strings=True, pre_tokenizer_name="qwen2")


if __name__ == "__main__":
    os.makedirs(FIXTURES, exist_ok=True)
    smollm2()
    llama3_tiny()
    qwen2_tiny()
