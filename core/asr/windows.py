"""Cutting clips longer than a model's context into windows.

Sequence-to-sequence models (Seamless, Gemma 3n, Whisper without timestamp
tokens) get plain back-to-back windows whose texts are joined. CTC models get
overlapping windows whose logits are trimmed of the overlap ("stride") before
one greedy decode over the whole clip, so a word cut by a window edge is still
seen whole by one of the windows (the scheme of transformers' ASR pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Samples ``[start, end)`` of a clip; ``left``/``right`` samples at its edges are
    context only, to be dropped from the window's output."""

    start: int
    end: int
    left: int = 0
    right: int = 0

    @property
    def size(self) -> int:
        return self.end - self.start


def split(length: int, window: int, stride: int = 0) -> list[Span]:
    """Windows of at most ``window`` samples covering ``[0, length)``.

    With ``stride`` > 0 consecutive windows overlap by ``2 * stride`` and the
    kept parts (without ``left``/``right``) tile the clip exactly once.
    """
    if window <= 0:
        raise ValueError("the window must be positive")
    if length <= window:
        return [Span(0, length)]
    step = window - 2 * stride
    if step <= 0:
        raise ValueError(f"stride {stride} leaves nothing of a {window}-sample window")
    spans = []
    start = 0
    while True:
        end = min(start + window, length)
        last = end >= length
        spans.append(Span(start, end, left=stride if start else 0, right=0 if last else stride))
        if last:
            return spans
        start += step
