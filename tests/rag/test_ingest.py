"""Indexing several uploads at once (core.rag.ingest) with the real MiniLM and FAISS: progress
reports with chunks/s and time left, the next file read while one is embedded, a bad file
skipped without stopping the others."""

from core.rag.ingest import IngestProgress, ingest
from core.rag.store import Collection

import threading
import time

import pytest

pytestmark = pytest.mark.slow

PARAGRAPH = ("The {name} depot opens at {hour} in the morning. Its forklifts are charged "
             "overnight and inspected every {day}. ")


def _upload(name: str, repeats: int, log: list[tuple[str, str, float]]):
    data = "\n\n".join(PARAGRAPH.format(name=name, hour=h % 12 + 1, day="Monday")
                       for h in range(repeats)).encode()

    def read() -> bytes:
        log.append(("read", name, time.perf_counter()))
        return data

    return (f"{name}.txt", read, len(data))


class _Timed:
    """The real embedder, noting when each call ends and in which thread it ran."""

    def __init__(self, inner, log: list[tuple[str, str, float]]) -> None:
        self.inner, self.log = inner, log

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self.inner.embed_documents(texts)
        self.log.append(("embedded", threading.current_thread().name, time.perf_counter()))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def test_multi_file_upload_reports_progress_and_reads_ahead(embedder, tmp_path):
    log: list[tuple[str, str, float]] = []
    sources = [_upload("north", 40, log), _upload("south", 25, log),
               ("broken.txt", lambda: b"\x00\x01" * 50, 100), _upload("east", 10, log)]
    reports: list[IngestProgress] = []
    collection = Collection("depots", root=tmp_path)
    result = ingest(collection, sources, _Timed(embedder, log), on_progress=reports.append,
                    slice_size=4)

    assert set(result.added) == {"north.txt", "south.txt", "east.txt"}
    assert len(result.errors) == 1 and "broken.txt" in result.errors[0]
    assert len(collection) == result.chunks > 12 and Collection("depots", root=tmp_path).chunks
    done = [r.chunks_done for r in reports]
    assert done == sorted(done) and done[-1] == result.chunks and len(set(done)) > 4
    last = reports[-1]
    assert last.files_done == last.files_total == 4 and last.fraction == 1.0
    assert last.chunks_per_second > 0 and last.seconds_left == 0
    middle = next(r for r in reports if 0 < r.chunks_done < result.chunks)
    assert middle.seconds_left is not None and middle.seconds_left > 0
    assert "chunks/s" in middle.describe() and "s left" in middle.describe()
    # south.txt (the second file) was read before the first file's last slice was embedded
    south_read = next(t for kind, name, t in log if kind == "read" and name == "south")
    north_chunks = result.added["north.txt"]
    north_done = [t for kind, _, t in log if kind == "embedded"][-(-north_chunks // 4) - 1]
    assert south_read < north_done
    assert all(thread == threading.current_thread().name
               for kind, thread, _ in log if kind == "embedded")
    hits = collection.search("When does the south depot open?", embedder, k=1)
    assert hits and hits[0].chunk.source == "south.txt"
