"""Measures of repetition in generated text, shared by the ASR and chat guards.

A decoder stuck in a loop says the same n-gram again and again: the run
length of the most repeated n-gram catches short loops, the gzip compression
ratio (Whisper's guard) long ones.
"""

from __future__ import annotations

import zlib

MAX_NGRAM = 6


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / max(len(zlib.compress(data)), 1)


def longest_repeat(words: list[str], max_n: int = MAX_NGRAM) -> int:
    """How many times the most repeated n-gram occurs back to back."""
    best = 1
    for n in range(1, max_n + 1):
        for start in range(n):
            run = 1
            for i in range(start + n, len(words) - n + 1, n):
                if words[i:i + n] == words[i - n:i]:
                    run += 1
                    best = max(best, run)
                else:
                    run = 1
    return best


def first_repeated_ngram(words: list[str], n: int) -> int | None:
    """Index where some ``n``-gram recurs (not overlapping its first use), or ``None``."""
    first: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - n + 1):
        gram = tuple(words[i:i + n])
        if gram in first and i - first[gram] >= n:
            return i
        first.setdefault(gram, i)
    return None
