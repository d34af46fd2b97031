"""Adding several files to a collection: the next file is read while this one is embedded.

Why: embedding is the slow part of indexing (MiniLM's matmuls, which release the GIL), while
reading a file (PDF text extraction, chunking) is Python work that can run beside it; a
user adding many files waits for the embedding alone. Progress (chunks/s, time left) is
reported after every slice of chunks, for the page's progress bar and ``ert ingest``'s.
"""

from __future__ import annotations

from core.rag.chunking import chunk_document
from core.rag.documents import DocumentError, read_document
from core.rag.store import Collection, Embedder

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

SLICE = 32  # chunks embedded between two progress reports (4 batches of 8)


@dataclass(frozen=True)
class IngestProgress:
    """Where an ingestion stands; ``chunks_expected`` grows as files are read (files not
    read yet are estimated from their size at the chunks per byte seen so far)."""

    files_done: int
    files_total: int
    chunks_done: int
    chunks_expected: int
    seconds: float
    current: str = ""

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_done / self.seconds if self.seconds > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        rate = self.chunks_per_second
        return (self.chunks_expected - self.chunks_done) / rate if rate > 0 else None

    @property
    def fraction(self) -> float:
        return min(1.0, self.chunks_done / self.chunks_expected) if self.chunks_expected else 0.0

    def describe(self) -> str:
        """One line for a progress bar: "Indexing a.pdf (2 of 5 files): 96 of 240 chunks ·
        31.2 chunks/s · about 5 s left"."""
        text = (f"Indexing {self.current} ({min(self.files_done + 1, self.files_total)} of "
                f"{self.files_total} files): {self.chunks_done} of ~{self.chunks_expected} "
                f"chunks")
        if self.chunks_done:
            text += f" · {self.chunks_per_second:.1f} chunks/s"
        left = self.seconds_left
        if left is not None and self.chunks_done < self.chunks_expected:
            text += f" · about {left:.0f} s left"
        return text


@dataclass
class IngestResult:
    added: dict[str, int] = field(default_factory=dict)  # file -> chunks
    errors: list[str] = field(default_factory=list)  # one message per file refused
    seconds: float = 0.0

    @property
    def chunks(self) -> int:
        return sum(self.added.values())


Source = tuple[str, Callable[[], bytes], int]  # name, how to read its bytes, its size


def _read(source: Source) -> tuple[str, list[str]]:
    name, read, _ = source
    doc = read_document(name, read())
    return doc.name, chunk_document(doc.text)


def ingest(collection: Collection, sources: Sequence[Source], embedder: Embedder,
           on_progress: Callable[[IngestProgress], object] | None = None,
           slice_size: int = SLICE) -> IngestResult:
    """Read, chunk, embed and add each source; one file's failure does not stop the others.

    The collection is saved once, at the end (its BM25 index is rebuilt on save).
    """
    result = IngestResult()
    started = time.perf_counter()
    total_bytes = sum(max(size, 1) for _, _, size in sources) or 1
    read_bytes, read_chunks, done = 0, 0, 0

    def report(files_done: int, current: str) -> None:
        if on_progress is None:
            return
        per_byte = read_chunks / read_bytes if read_bytes else 0.0
        expected = read_chunks + round((total_bytes - read_bytes) * per_byte)
        on_progress(IngestProgress(files_done, len(sources), done, max(expected, done),
                                   time.perf_counter() - started, current))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ert-ingest-read") as reader:
        pending: Future | None = reader.submit(_read, sources[0]) if sources else None
        for i, source in enumerate(sources):
            assert pending is not None
            try:
                name, texts = pending.result()
            except (OSError, DocumentError) as exc:
                name, texts = source[0], None
                result.errors.append(str(exc))
            pending = reader.submit(_read, sources[i + 1]) if i + 1 < len(sources) else None
            read_bytes += max(source[2], 1)
            if not texts:
                if texts is not None:
                    result.errors.append(f"{name}: no text to index")
                report(i + 1, name)
                continue
            read_chunks += len(texts)
            report(i, name)
            parts = []
            for start in range(0, len(texts), slice_size):
                parts.append(np.asarray(embedder.embed_documents(texts[start:start + slice_size]),
                                        dtype=np.float32))
                done += len(parts[-1])
                report(i, name)
            result.added[name] = collection.add_texts(
                name, texts, np.ascontiguousarray(np.concatenate(parts)))
    if result.added:
        collection.save()
    result.seconds = time.perf_counter() - started
    report(len(sources), "")
    return result
