"""Server-side batching: concurrent requests for one model share one forward pass.

The first request of a batch waits up to ``batch_window_ms`` for others of
the same model (and the same decoding options) to join, up to ``max_batch``;
then the batch runs on a worker thread while new requests queue behind it.
The queue is bounded so an overloaded server answers 503 at once instead of
letting latency grow without limit.
"""

from __future__ import annotations

from core.api.pool import ModelPool
from core.api.settings import ServeSettings
from core.asr.base import DecodeOptions, Transcript

import asyncio
import dataclasses
from dataclasses import dataclass, field

import numpy as np


class QueueFull(RuntimeError):
    """Too many requests are already waiting for this model."""


@dataclass
class Job:
    audio: np.ndarray
    options: DecodeOptions
    future: asyncio.Future = field(repr=False)


class ModelBatcher:
    def __init__(self, pool: ModelPool, key: str, settings: ServeSettings) -> None:
        self.pool, self.key, self.settings = pool, key, settings
        self.queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=settings.queue_size)
        self.batches_run = 0
        self.largest_batch = 0
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def enqueue(self, audio: np.ndarray, options: DecodeOptions) -> asyncio.Future:
        """Queue one clip now (QueueFull at once when the queue is); its transcript to come.
        Cancelling the future before its batch runs takes the clip out of the batch."""
        job = Job(audio, options, asyncio.get_running_loop().create_future())
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull as exc:
            raise QueueFull(f"{self.queue.qsize()} requests are already waiting for "
                            f"{self.key}; retry later") from exc
        return job.future

    async def submit(self, audio: np.ndarray, options: DecodeOptions) -> Transcript:
        return await self.enqueue(audio, options)

    async def _collect(self) -> list[Job]:
        batch = [await self.queue.get()]
        if not self.settings.batching:
            return batch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.batch_window_ms / 1000
        # Polling rather than wait_for(queue.get()): a timeout racing a get can drop a job.
        while len(batch) < self.settings.max_batch and loop.time() < deadline:
            try:
                batch.append(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                await asyncio.sleep(0.002)
        return batch

    def _run(self, jobs: list[Job]) -> list[Transcript]:
        with self.pool.use(self.key) as entry:
            options = dataclasses.replace(jobs[0].options, batch_size=len(jobs))
            return entry.backend.transcribe([j.audio for j in jobs], options)

    async def _loop(self) -> None:
        while True:
            batch = await self._collect()
            groups: dict[str, list[Job]] = {}
            for job in batch:  # one decoding setting per forward pass; none for the gone
                if job.future.cancelled():
                    continue
                groups.setdefault(repr(dataclasses.astuple(job.options)), []).append(job)
            for jobs in groups.values():
                self.batches_run += 1
                self.largest_batch = max(self.largest_batch, len(jobs))
                try:
                    results = await asyncio.to_thread(self._run, jobs)
                except Exception as exc:  # load failures reach every waiting request
                    for job in jobs:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                for job, result in zip(jobs, results, strict=True):
                    if not job.future.done():
                        job.future.set_result(result)

    def close(self) -> None:
        self._task.cancel()
