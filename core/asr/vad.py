"""Cutting long audio at pauses with the Silero VAD that faster-whisper ships (its ONNX
model is inside the package: nothing to download)."""

from __future__ import annotations

from core.asr.windows import Span, split
from core.audio import SAMPLE_RATE

import numpy as np

MIN_SILENCE_MS = 160
PIECE_SECONDS = 30.0  # the longest audio every backend decodes in one window (Whisper's)


def speech_windows(clip: np.ndarray, window: int) -> list[Span]:
    """Speech regions merged into windows of at most ``window`` samples (silence between
    windows dropped; a region longer than a window is cut by the VAD at its longest pause)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    regions = get_speech_timestamps(clip, VadOptions(
        max_speech_duration_s=window / SAMPLE_RATE, min_silence_duration_ms=MIN_SILENCE_MS))
    spans: list[Span] = []
    for region in regions:
        start, end = int(region["start"]), int(region["end"])
        if spans and end - spans[-1].start <= window:
            spans[-1] = Span(spans[-1].start, end)
        else:
            spans.append(Span(start, end))
    return spans


def windows(clip: np.ndarray, window: int, at_pauses: bool = True) -> list[Span]:
    """Spans of at most ``window`` samples: the whole clip when it fits, else cut at pauses
    (``at_pauses``, silence dropped) or every ``window`` samples."""
    if clip.size <= window:
        return [Span(0, clip.size)]
    return speech_windows(clip, window) if at_pauses else split(clip.size, window)


def pieces(clip: np.ndarray, seconds: float = PIECE_SECONDS) -> list[Span]:
    """Where to cut a clip into pieces of at most ``seconds`` at pauses (the whole clip when
    it fits; none when it is longer and holds no speech); spans, so their times are kept."""
    return windows(clip, int(seconds * SAMPLE_RATE))
