"""Server-side batching (core.api.batcher) with a fake model: no weights are loaded."""

from __future__ import annotations

from core.api.batcher import ModelBatcher, QueueFull
from core.api.settings import ServeSettings
from core.asr.base import DecodeOptions, Transcript

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pytest


@dataclass
class FakeBackend:
    """Answers each clip with its first value, records every forward pass."""

    gate: threading.Event = field(default_factory=threading.Event)
    fail: bool = False
    calls: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gate.set()

    def transcribe(self, clips, options: DecodeOptions) -> list[Transcript]:
        self.calls.append({"ids": [int(c[0]) for c in clips], "options": options,
                           "at": time.monotonic()})
        self.gate.wait(10)
        if self.fail:
            raise RuntimeError("the model could not load")
        return [Transcript(f"clip {int(c[0])} in {options.language}", 0.01, c.size / 16000)
                for c in clips]


@dataclass
class Entry:
    backend: FakeBackend
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakePool:
    def __init__(self, backend: FakeBackend) -> None:
        self.entry = Entry(backend)
        self.keys: list[str] = []

    @contextmanager
    def use(self, key: str) -> Iterator[Entry]:
        self.keys.append(key)
        with self.entry.lock:
            yield self.entry


def clip(i: int) -> np.ndarray:
    return np.full(1600, i, dtype=np.float32)


def settings(**kw) -> ServeSettings:
    return ServeSettings(**{"batch_window_ms": 100.0, "max_batch": 16, "queue_size": 64,
                            "api_key": None, **kw})


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=30))


def test_concurrent_requests_share_one_forward_pass_and_each_gets_its_own_text():
    backend = FakeBackend()

    async def main():
        batcher = ModelBatcher(FakePool(backend), "fake:model", settings())
        try:
            results = await asyncio.gather(*(batcher.submit(clip(i), DecodeOptions(language="en"))
                                             for i in range(5)))
        finally:
            batcher.close()
        return batcher, results

    batcher, results = run(main())
    assert [r.text for r in results] == [f"clip {i} in en" for i in range(5)]
    assert len(backend.calls) == 1 and sorted(backend.calls[0]["ids"]) == list(range(5))
    assert backend.calls[0]["options"].batch_size == 5  # the pass is told its real size
    assert batcher.batches_run == 1 and batcher.largest_batch == 5


def test_a_batch_holds_at_most_max_batch_requests():
    backend = FakeBackend()

    async def main():
        batcher = ModelBatcher(FakePool(backend), "fake:model", settings(max_batch=3))
        try:
            results = await asyncio.gather(*(batcher.submit(clip(i), DecodeOptions())
                                             for i in range(7)))
        finally:
            batcher.close()
        return batcher, results

    batcher, results = run(main())
    assert [len(c["ids"]) for c in backend.calls] == [3, 3, 1]
    assert sorted(i for c in backend.calls for i in c["ids"]) == list(range(7))
    assert [r.text for r in results] == [f"clip {i} in None" for i in range(7)]
    assert batcher.largest_batch == 3 and batcher.batches_run == 3


def test_a_full_batch_does_not_wait_for_the_window():
    backend = FakeBackend()

    async def main():
        batcher = ModelBatcher(FakePool(backend), "fake:model",
                               settings(max_batch=2, batch_window_ms=5000))
        started = time.monotonic()
        try:
            await asyncio.gather(*(batcher.submit(clip(i), DecodeOptions()) for i in range(2)))
        finally:
            batcher.close()
        return time.monotonic() - started

    assert run(main()) < 2.0  # far under the 5 s window
    assert [len(c["ids"]) for c in backend.calls] == [2]


def test_the_first_request_waits_for_the_window_and_a_later_one_joins_it():
    backend = FakeBackend()
    window = 0.3

    async def main():
        batcher = ModelBatcher(FakePool(backend), "fake:model",
                               settings(batch_window_ms=window * 1000))
        try:
            submitted = time.monotonic()
            first = asyncio.ensure_future(batcher.submit(clip(0), DecodeOptions()))
            await asyncio.sleep(window / 3)  # inside the window
            second = asyncio.ensure_future(batcher.submit(clip(1), DecodeOptions()))
            await asyncio.gather(first, second)
        finally:
            batcher.close()
        return submitted

    submitted = run(main())
    assert [sorted(c["ids"]) for c in backend.calls] == [[0, 1]]
    assert backend.calls[0]["at"] - submitted >= window * 0.9  # it waited for company


def test_a_request_after_the_window_closed_runs_in_the_next_batch():
    backend = FakeBackend()
    window = 0.05

    async def main():
        batcher = ModelBatcher(FakePool(backend), "fake:model",
                               settings(batch_window_ms=window * 1000))
        try:
            first = asyncio.ensure_future(batcher.submit(clip(0), DecodeOptions()))
            await asyncio.sleep(window * 6)
            second = asyncio.ensure_future(batcher.submit(clip(1), DecodeOptions()))
            await asyncio.gather(first, second)
        finally:
            batcher.close()
        return batcher

    batcher = run(main())
    assert [c["ids"] for c in backend.calls] == [[0], [1]]
    assert batcher.batches_run == 2 and batcher.largest_batch == 1


def test_without_batching_every_request_runs_alone():
    backend = FakeBackend()

    async def main():
        batcher = ModelBatcher(FakePool(backend), "fake:model", settings(batching=False))
        try:
            await asyncio.gather(*(batcher.submit(clip(i), DecodeOptions()) for i in range(4)))
        finally:
            batcher.close()
        return batcher

    batcher = run(main())
    assert [len(c["ids"]) for c in backend.calls] == [1, 1, 1, 1]
    assert batcher.largest_batch == 1


def test_requests_with_different_decoding_options_never_share_a_pass():
    backend = FakeBackend()

    async def main():
        batcher = ModelBatcher(FakePool(backend), "fake:model", settings())
        try:
            return await asyncio.gather(*(
                batcher.submit(clip(i), DecodeOptions(language="fr" if i % 2 else "en"))
                for i in range(6)))
        finally:
            batcher.close()

    results = run(main())
    assert [r.text for r in results] == [f"clip {i} in {'fr' if i % 2 else 'en'}"
                                         for i in range(6)]
    assert len(backend.calls) == 2
    for call in backend.calls:
        expected = "fr" if call["ids"][0] % 2 else "en"
        assert call["options"].language == expected
        assert all(("fr" if i % 2 else "en") == expected for i in call["ids"])


def test_a_full_queue_refuses_at_once_and_the_accepted_requests_still_finish():
    backend = FakeBackend()
    backend.gate.clear()  # the first pass blocks until released

    async def main():
        batcher = ModelBatcher(FakePool(backend), "fake:model",
                               settings(batching=False, queue_size=2))
        try:
            running = asyncio.ensure_future(batcher.submit(clip(0), DecodeOptions()))
            while not backend.calls:  # the first job has left the queue and is running
                await asyncio.sleep(0.005)
            queued = [asyncio.ensure_future(batcher.submit(clip(i), DecodeOptions()))
                      for i in (1, 2)]
            await asyncio.sleep(0.05)
            started = time.monotonic()
            with pytest.raises(QueueFull, match="2 requests are already waiting for "
                                                "fake:model"):
                await batcher.submit(clip(3), DecodeOptions())
            refused_in = time.monotonic() - started
            backend.gate.set()
            results = await asyncio.gather(running, *queued)
        finally:
            batcher.close()
        return refused_in, results

    refused_in, results = run(main())
    assert refused_in < 0.5  # refused at once, not after waiting for room
    assert [r.text for r in results] == [f"clip {i} in None" for i in range(3)]
    assert sorted(i for c in backend.calls for i in c["ids"]) == [0, 1, 2]


def test_a_failing_pass_reaches_every_waiting_request_and_the_batcher_goes_on():
    backend = FakeBackend(fail=True)

    async def main():
        batcher = ModelBatcher(FakePool(backend), "fake:model", settings())
        try:
            failed = await asyncio.gather(*(batcher.submit(clip(i), DecodeOptions())
                                            for i in range(3)), return_exceptions=True)
            backend.fail = False
            after = await batcher.submit(clip(9), DecodeOptions())
        finally:
            batcher.close()
        return failed, after

    failed, after = run(main())
    assert all(isinstance(e, RuntimeError) and "could not load" in str(e) for e in failed)
    assert after.text == "clip 9 in None"


def test_the_pool_is_asked_for_the_batchers_model():
    backend = FakeBackend()
    pool = FakePool(backend)

    async def main():
        batcher = ModelBatcher(pool, "whisper:tiny", settings())
        try:
            await batcher.submit(clip(0), DecodeOptions())
        finally:
            batcher.close()

    run(main())
    assert pool.keys == ["whisper:tiny"]


def test_a_request_cancelled_before_its_batch_runs_is_left_out_of_it():
    """A stream whose client left, or a file refused halfway by a full queue, cancels its
    pieces: the model does not decode them."""
    backend = FakeBackend()

    async def main():
        batcher = ModelBatcher(FakePool(backend), "fake:model", settings())
        try:
            gone = batcher.enqueue(clip(1), DecodeOptions())
            kept = batcher.enqueue(clip(2), DecodeOptions())
            gone.cancel()
            return await kept
        finally:
            batcher.close()

    assert run(main()).text == "clip 2 in None"
    assert [c["ids"] for c in backend.calls] == [[2]]
