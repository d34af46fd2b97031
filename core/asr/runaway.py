"""Telling a decoder loop ("de la partie de la partie …") from speech.

Whisper's own guard is the compression ratio of the text (gzip; its
threshold 2.4): a loop compresses far better than language. Short texts
compress badly whatever they say, so a run of one n-gram repeated many
times back to back is checked as well.
"""

from __future__ import annotations

import zlib

COMPRESSION_RATIO = 2.4  # Whisper's compression_ratio_threshold
MIN_CHARS = 40  # below this the ratio says nothing
MAX_REPEATS = 4  # an n-gram (n ≤ 6) said more than this many times in a row
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


def is_runaway(text: str) -> bool:
    """Whether ``text`` looks like a decoding loop rather than a transcript."""
    text = text.strip()
    if len(text) >= MIN_CHARS and compression_ratio(text) > COMPRESSION_RATIO:
        return True
    return longest_repeat(text.lower().split()) > MAX_REPEATS
