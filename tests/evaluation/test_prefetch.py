"""Audio read ahead of the model: same clips, same order, bounded, failures kept per sample."""

from __future__ import annotations

from core.datasets import Sample
from core.evaluation import prefetch
from core.evaluation.prefetch import AudioPrefetcher

import threading

import numpy as np
import pytest


def _samples(count: int, corrupt: int | None = None) -> list[Sample]:
    out = []
    for i in range(count):
        if i == corrupt:
            out.append(Sample(f"s{i}", None, "x", audio_bytes=b"not audio at all"))
        else:
            out.append(Sample(f"s{i}", None, "x", audio=np.full(1600, i / 100, np.float32),
                              sampling_rate=16000))
    return out


@pytest.mark.parametrize("background", [True, False])
def test_prefetch_gives_every_clip_in_order_and_fails_a_corrupt_one_alone(background: bool
                                                                        ) -> None:
    reader = AudioPrefetcher(_samples(7, corrupt=3), lambda: 2, background=background)
    clips = reader.take(3) + reader.take(3) + reader.take(3)  # the last take gets only 1
    reader.close()
    assert [c.sample.id for c in clips] == [f"s{i}" for i in range(7)]
    assert clips[3].audio is None and clips[3].error.startswith("audio:")
    assert all(c.audio is not None and c.error is None for i, c in enumerate(clips) if i != 3)
    assert clips[5].audio[0] == pytest.approx(0.05)


def test_prefetch_reads_at_most_ahead_clips_before_they_are_taken(monkeypatch) -> None:
    read: list[str] = []
    gate = threading.Event()
    real = prefetch.read_clip

    def counting(sample: Sample) -> prefetch.Clip:
        read.append(sample.id)
        if len(read) == 3:
            gate.set()
        return real(sample)

    monkeypatch.setattr(prefetch, "read_clip", counting)
    reader = AudioPrefetcher(_samples(20), lambda: 3)
    assert gate.wait(10)
    threading.Event().wait(0.3)  # room for a reader that ignores the bound to overrun
    assert len(read) == 3
    reader.take(2)
    threading.Event().wait(0.3)
    assert len(read) == 5  # two taken, two more read: still 3 ahead
    reader.close()
    assert len(read) == 5


def test_prefetch_raises_a_reading_bug_in_the_consumer(monkeypatch) -> None:
    def broken(sample: Sample) -> prefetch.Clip:
        raise RuntimeError("a bug, not a bad file")

    monkeypatch.setattr(prefetch, "read_clip", broken)
    reader = AudioPrefetcher(_samples(4), lambda: 2)
    with pytest.raises(RuntimeError, match="a bug"):
        reader.take(2)
    reader.close()
