"""Audio read ahead of the model: same clips, same order, bounded, failures kept per sample."""

from __future__ import annotations

from core.datasets import Sample
from core.evaluation.prefetch import AudioPrefetcher

import os
import signal
import time

import numpy as np
import psutil
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


class _Buggy(Sample):
    """A sample whose reading has a bug (not a bad file); module level, so the reader
    process can unpickle it."""

    def load_audio(self, sampling_rate: int = 16000) -> np.ndarray:
        raise RuntimeError("a bug, not a bad file")


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


def test_prefetch_asks_for_at_most_ahead_clips_beyond_those_taken() -> None:
    reader = AudioPrefetcher(_samples(20), lambda: 3)
    assert reader.asked == 3
    reader.take(2)
    assert reader.asked == 5  # two taken, two more asked for: still 3 ahead
    reader.take(5)  # a take larger than the room asks for what it needs
    assert reader.asked == 10
    reader.close()


def test_prefetch_reads_in_another_process() -> None:
    """A thread beside the decoding loop slowed it 18 % (BENCHMARKS.md): the reader must be
    a process of its own."""
    reader = AudioPrefetcher(_samples(4), lambda: 2)
    pid = reader._process.pid
    try:
        assert pid != os.getpid() and pid in [c.pid for c in psutil.Process().children()]
        assert reader.take(4)[0].sample.id == "s0"
    finally:
        reader.close()
    assert not psutil.pid_exists(pid)  # closed: nothing left behind


def test_prefetch_raises_a_reading_bug_in_the_consumer() -> None:
    reader = AudioPrefetcher([_Buggy("b0", None, "x"), *_samples(3)], lambda: 2)
    with pytest.raises(RuntimeError, match="a bug, not a bad file"):
        reader.take(2)
    reader.close()


def test_a_dead_reader_is_an_error_not_a_hang() -> None:
    reader = AudioPrefetcher(_samples(6), lambda: 2)
    reader.take(2)
    os.kill(reader._process.pid, signal.SIGKILL)
    reader._process.join()
    with pytest.raises(RuntimeError, match="reader process ended"):
        for _ in range(3):
            reader.take(2)
    reader.close()


def test_the_reader_ends_when_its_worker_is_killed(tmp_path) -> None:
    """A worker SIGKILLed mid-run leaves no reader process behind."""
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import numpy as np, time\n"
            "from core.datasets import Sample\n"
            "from core.evaluation.prefetch import AudioPrefetcher\n"
            "s = [Sample(str(i), None, 'x', audio=np.zeros(160, np.float32), "
            "sampling_rate=16000) for i in range(4)]\n"
            "r = AudioPrefetcher(s, lambda: 2)\n"
            "r.take(1)\n"
            "print(r._process.pid, flush=True)\n"
            "time.sleep(60)\n")
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    try:
        reader = int(worker.stdout.readline())
        worker.kill()
        worker.wait()
        deadline = time.monotonic() + 10
        while psutil.pid_exists(reader) and psutil.Process(reader).status() != "zombie" \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not psutil.pid_exists(reader) or psutil.Process(reader).status() == "zombie"
    finally:
        worker.kill()
