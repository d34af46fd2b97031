"""Reading audio ahead of the model.

A worker used to read a batch's audio, then transcribe it, then read the next:
the device waited for the CPU at every step (on a GPU, reading and resampling
5,120 short clips took a third of a large model's turn). Here the next clips are
decoded, in the run's order, while the model transcribes the current ones; what
the model is given does not change, only when its audio was read. At most one
batch is asked for ahead, so memory grows by one batch of audio.

The reading runs in a child process, not a thread: greedy decoding on a GPU is
bound by the Python side of ``generate`` launching kernels, and a reading thread
took the interpreter from it often enough to make the decoding 18 % slower per
clip (H200, Whisper large-v3 shapes; BENCHMARKS.md). The child receives each
sample as it is asked for (a sample may carry its audio in memory) and sends the
decoded clip back; it starts while the model loads.

Only for a model on a GPU: on the CPU the model already uses every core ERT
lets it have, and reading beside it made the same turn slower (2 cores:
37.7 → 39.2 s for 960 clips), so there clips are read when they are taken.
"""

from __future__ import annotations

from core.audio import AudioError
from core.datasets import Sample

import multiprocessing
import os
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

POLL_SECONDS = 1.0  # how often a waiting side checks that the other is still alive


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


def _serve(requests: Any, results: Any) -> None:
    """The reader process: decode each sample asked for, in order. A bug in reading
    (anything but :class:`AudioError`) is sent back as its traceback, and ends the reader;
    so does the worker's end, even a SIGKILL (it is then no longer this process's parent)."""
    parent = os.getppid()
    while True:
        try:
            sample = requests.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if os.getppid() != parent:
                return
            continue
        try:
            results.put(read_clip(sample))
        except BaseException:
            results.put(traceback.format_exc())
            return


class AudioPrefetcher:
    """Decode ``samples`` in order in a reader process, ``ahead()`` clips in advance
    (``background=False``: read each clip when it is taken, in this process).

    ``ahead`` is read each time: the batch size may grow while it is tuned. A bug in
    reading (anything but :class:`AudioError`, which fails only its sample), or the
    reader's death, is raised by :meth:`take`.
    """

    def __init__(self, samples: Sequence[Sample], ahead: Callable[[], int],
                 background: bool = True) -> None:
        self._samples = list(samples)
        self._ahead = ahead
        self._taken = 0
        self.asked = 0  # samples sent to the reader so far
        self._process: Any = None
        if background and self._samples:
            context = multiprocessing.get_context("spawn")  # no fork of a CUDA process
            self._requests, self._results = context.Queue(), context.Queue()
            self._process = context.Process(target=_serve, name="ert-audio-reader",
                                            args=(self._requests, self._results), daemon=True)
            self._process.start()
            self._ask(max(self._ahead(), 1))

    def _ask(self, room: int) -> None:
        """Keep ``room`` samples asked for beyond those taken."""
        while self.asked < min(self._taken + room, len(self._samples)):
            self._requests.put(self._samples[self.asked])
            self.asked += 1

    def _receive(self) -> Clip:
        while True:
            try:
                got = self._results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if not self._process.is_alive():
                    raise RuntimeError(f"the audio reader process ended (exit code "
                                       f"{self._process.exitcode})") from None
                continue
            if isinstance(got, str):
                raise RuntimeError(f"the audio reader failed:\n{got}")
            return got

    def take(self, count: int) -> list[Clip]:
        """The next ``count`` clips (fewer at the end), waiting for them if needed."""
        count = min(count, len(self._samples) - self._taken)
        if self._process is None:
            self._taken += count
            return [read_clip(s) for s in self._samples[self._taken - count:self._taken]]
        self._ask(count)
        clips = [self._receive() for _ in range(count)]
        self._taken += count
        self._ask(max(self._ahead(), 1))  # the next batch, read while this one is decoded
        return clips

    def close(self) -> None:
        """Stop reading (the end, a cancel, a memory stop); returns once the reader ended."""
        if self._process is None:
            return
        self._process.terminate()  # it holds nothing but clips nobody will take
        self._process.join()
        for channel in (self._requests, self._results):
            channel.cancel_join_thread()  # clips never taken: drop them, do not wait
            channel.close()
        self._process = None
