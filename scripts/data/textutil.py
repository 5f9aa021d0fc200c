"""Shared text helpers for the dataset scripts (standard library only)."""
import re

_NON_WORD = re.compile(r"[^a-z0-9']+")


def normalise(text):
    """Lower case, punctuation to spaces, whitespace collapsed, curly quotes made straight."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(_NON_WORD.sub(" ", text).split())


def words(text):
    return normalise(text).split()


def ngrams(tokens, n):
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def trigram_set(text):
    w = words(text)
    return set(ngrams(w, 3)) if len(w) >= 3 else {tuple(w)}


def jaccard(a, b):
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
