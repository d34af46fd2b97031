"""Telling a decoder loop ("de la partie de la partie …") from speech.

Whisper's own guard is the compression ratio of the text (gzip; its
threshold 2.4): a loop compresses far better than language. Short texts
compress badly whatever they say, so a run of one n-gram repeated many
times back to back is checked as well.
"""

from __future__ import annotations

from core.repetition import compression_ratio, longest_repeat

COMPRESSION_RATIO = 2.4  # Whisper's compression_ratio_threshold
MIN_CHARS = 40  # below this the ratio says nothing
MAX_REPEATS = 4  # an n-gram (n ≤ 6) said more than this many times in a row


def is_runaway(text: str) -> bool:
    """Whether ``text`` looks like a decoding loop rather than a transcript."""
    text = text.strip()
    if len(text) >= MIN_CHARS and compression_ratio(text) > COMPRESSION_RATIO:
        return True
    return longest_repeat(text.lower().split()) > MAX_REPEATS
