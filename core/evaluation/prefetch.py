"""Reading audio ahead of the model.

A worker used to read a batch's audio, then transcribe it, then read the next:
the device waited for the CPU at every step (on a GPU, reading and resampling
5,120 short clips took a third of a large model's turn). Here a thread decodes
the next clips, in the run's order, while the model transcribes the current
ones; what the model is given does not change, only when its audio was read.
At most one batch is held ahead, so memory grows by one batch of audio. The
samples may come from a lazy iterator (:mod:`core.evaluation.claims` hands a
data-parallel worker its samples as it goes): it is advanced only when a clip
is about to be read.

Only for a model on a GPU: on the CPU the model already uses every core ERT
lets it have, and a reading thread beside it made the same turn slower (2 cores:
37.7 → 39.2 s for 960 clips), so there clips are read when they are taken.
"""

from __future__ import annotations

from core.audio import AudioError
from core.datasets import Sample

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np


@dataclass
class Clip:
    """One sample's audio as read (``audio`` None and ``error`` set when it could not be)."""

    sample: Sample
    audio: np.ndarray | None
    error: str | None
    seconds: float  # spent reading it


def read_clip(sample: Sample) -> Clip:
    began = time.perf_counter()
    try:
        audio = sample.load_audio()
    except AudioError as exc:
        return Clip(sample, None, f"audio: {exc}", time.perf_counter() - began)
    return Clip(sample, audio, None, time.perf_counter() - began)


class AudioPrefetcher:
    """Decode ``samples`` in order on a background thread, ``ahead()`` clips in advance
    (``background=False``: read each clip when it is taken, on the caller's thread).

    ``ahead`` is read each time: the batch size may grow while it is tuned. A bug in
    reading (anything but :class:`AudioError`, which fails only its sample) is raised
    again by :meth:`take`, so it is not lost on the thread.
    """

    def __init__(self, samples: Iterable[Sample], ahead: Callable[[], int],
                 background: bool = True) -> None:
        self._samples = iter(samples)
        self._ahead = ahead
        self._ready: deque[Clip] = deque()
        self._wanted = 0
        self._cond = threading.Condition()
        self._stop = False
        self._error: BaseException | None = None
        self._done = False
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._read, name="ert-audio-prefetch",
                                            daemon=True)
            self._thread.start()

    def _read(self) -> None:
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(
                        lambda: self._stop or len(self._ready) < self._room())
                    if self._stop:
                        return
                sample = next(self._samples, None)
                if sample is None:
                    return
                clip = read_clip(sample)
                with self._cond:
                    self._ready.append(clip)
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the consumer by take()
            with self._cond:
                self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _room(self) -> int:
        """How many clips may wait: ``ahead()``, or what a waiting :meth:`take` asks."""
        return max(self._ahead(), self._wanted, 1)

    def take(self, count: int) -> list[Clip]:
        """The next ``count`` clips (fewer at the end, none once all are taken), waiting
        for them if needed."""
        if self._thread is None:
            return [read_clip(s) for s in itertools.islice(self._samples, count)]
        with self._cond:
            self._wanted = count
            self._cond.notify_all()
            self._cond.wait_for(lambda: len(self._ready) >= count or self._done)
            self._wanted = 0
            if self._error is not None and len(self._ready) < count:
                raise self._error
            clips = [self._ready.popleft() for _ in range(min(count, len(self._ready)))]
            self._cond.notify_all()  # room for more
        return clips

    def close(self) -> None:
        """Stop reading (a cancel, a memory stop); returns once the thread has ended."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
