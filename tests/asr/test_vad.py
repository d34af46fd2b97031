"""Long audio cut at pauses (core.asr.vad): windows end in silence, never inside a sentence."""

from __future__ import annotations

from core.asr.vad import pieces, windows
from core.audio import SAMPLE_RATE
from core.demo_data import synthesize

import numpy as np

SENTENCES = ["The quick brown fox jumps over the lazy dog.",
             "Please close the door when you leave the room.",
             "The meeting starts at nine in the morning on Monday."]


def _speech_with_gaps(repeats: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Sentences separated by one second of silence, and where each sentence lies."""
    gap = np.zeros(SAMPLE_RATE, np.float32)
    parts, spoken, pos = [], [], 0
    for i in range(repeats):
        voice = synthesize(SENTENCES[i % len(SENTENCES)], "en-us")
        loud = np.flatnonzero(np.abs(voice) > 0.01)  # espeak pads its speech with silence
        parts += [voice, gap]
        spoken.append((pos + int(loud[0]), pos + int(loud[-1])))
        pos += voice.size + gap.size
    return np.concatenate(parts), spoken


def test_long_audio_is_cut_in_the_pauses_into_windows_of_at_most_30_s():
    clip, spoken = _speech_with_gaps(16)
    window = 30 * SAMPLE_RATE
    assert clip.size > 2 * window
    spans = windows(clip, window)
    assert len(spans) >= 2 and all(s.size <= window for s in spans)
    for span in spans:  # no sentence is split between two windows
        for start, end in spoken:
            assert end <= span.start or start >= span.end or \
                (span.start <= start and end <= span.end), (span, start, end)
    fixed = windows(clip, window, at_pauses=False)  # what cutting every 30 s would do
    assert any(start < s.end < end for s in fixed[:-1] for start, end in spoken)


def test_a_clip_that_fits_is_one_window_and_long_silence_gives_no_piece():
    clip = synthesize(SENTENCES[0], "en-us")
    assert [(s.start, s.end) for s in windows(clip, 30 * SAMPLE_RATE)] == [(0, clip.size)]
    assert len(pieces(clip)) == 1 and pieces(clip)[0] is not None
    assert pieces(np.zeros(40 * SAMPLE_RATE, np.float32)) == []
