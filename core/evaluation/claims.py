"""Data-parallel workers share a model's samples as they go instead of dealing them out.

Dealt up front (worker ``i`` of ``n`` takes every ``n``-th sample), a batch ends when its
slowest worker ends: one that loaded late, a slower GPU, a busier node; on 4 GPUs the
workers' turns ended up to 5 s apart. Here the dataset is cut into chunks of
:data:`CHUNK_SIZE` samples and a worker claims a chunk only when it is about to read its
audio: its own chunks first (every ``n``-th, what the deal would have given it), then, once
those are gone, the others' from the end, so the workers finish within about one batch of
each other.

A claim is a hard link from the chunk's name to the worker's own marker file: ``link``
fails if the name exists, so each chunk goes to one worker whatever runs where (one host,
or a cluster on a shared filesystem), and the claim is complete the moment it exists.
The claims live in one folder per dispatch of a batch (:meth:`RunDir.new_claims`): a
resumed run starts afresh and skips what is recorded. A worker started again under the
same index (Ray retries a lost task with the same arguments) takes back the chunks it had
claimed, its marker being the same file; the chunks of a worker that is not started again
are left to the runner's retry worker, which takes every sample still missing. Records
stay first-wins, so nothing can be doubled even where a chunk is done twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CHUNK_SIZE = 8  # samples a claim takes: small next to a GPU batch, few files per model
CHUNKS_PER_WORKER = 4  # at least this many chunks each, or chunks shrink (small datasets)


def chunk_size(samples: int, workers: int) -> int:
    """Samples per chunk: :data:`CHUNK_SIZE`, smaller where a dataset gives each worker
    fewer than :data:`CHUNKS_PER_WORKER` chunks. Every worker computes the same from the
    same dataset, so the chunks agree."""
    return max(1, min(CHUNK_SIZE, samples // max(1, workers * CHUNKS_PER_WORKER)))


def can_claim(folder: Path) -> bool:
    """Whether ``folder``'s filesystem has hard links (some network and FUSE mounts do
    not); without them the runner deals the samples out as before."""
    folder.mkdir(parents=True, exist_ok=True)
    source, probe = folder / ".probe", folder / ".probe-link"
    try:
        source.touch()
        os.link(source, probe)
        return True
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)
        source.unlink(missing_ok=True)


class Claims:
    """Worker ``index`` of ``count`` claiming chunks of one model's samples in ``folder``."""

    def __init__(self, folder: Path, index: int, count: int) -> None:
        self.folder, self.index, self.count = folder, index, count
        folder.mkdir(parents=True, exist_ok=True)
        self.marker = folder / f"worker-{index}"
        self.marker.touch(exist_ok=True)

    def claim(self, chunk: int) -> bool:
        """Take ``chunk``; True when it is this worker's (now, or before a restart)."""
        name = self.folder / f"chunk-{chunk}"
        try:
            os.link(self.marker, name)
            return True
        except FileExistsError:
            return os.path.samefile(self.marker, name)

    def order(self, chunks: int) -> list[int]:
        """This worker's chunks in order, then the others' from the last."""
        own = list(range(self.index, chunks, self.count))
        others = [c for c in range(chunks - 1, -1, -1) if c % self.count != self.index]
        return own + others

    def chunks(self, items: Sequence[T]) -> Iterator[list[T]]:
        """The chunks of ``items`` this worker claims, claimed one at a time as they are
        asked for (so the others can still take what it has not reached)."""
        size = chunk_size(len(items), self.count)
        for chunk in self.order(-(-len(items) // size)):
            if self.claim(chunk):
                yield list(items[chunk * size:(chunk + 1) * size])
