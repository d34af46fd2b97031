"""RAG: embedding throughput by batch size, and query latency on a 10,000-chunk collection.

``python -m bench rag`` — the bundled all-MiniLM-L6-v2 through
``core.rag.embeddings.load_embeddings``; real text: the documentation of
Python's standard library (``pydoc``), split by ERT's own chunker.

* chunks embedded per second at batch 8 (ERT's setting) against larger
  batches, interleaved, median of ``REPEATS``; every run embeds its own
  ``SPEED_CHUNKS`` chunks (~750 characters each: compute-bound, ~6-10 chunks/s
  on 2 cores), so the runs also provide the real vectors of the index;
* a :class:`core.rag.store.Collection` of 10,000 chunks: those real vectors
  and copies of them with small noise (re-normalized); then p50/p95 of
  ``Collection.search`` (embed the query + FAISS search).
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.rag.chunking import split_text
from core.rag.embeddings import load_embeddings
from core.rag.store import Collection

import importlib
import pydoc
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import median, save, table

MODULES = ("argparse", "asyncio", "collections", "csv", "datetime", "email", "functools",
           "http.client", "json", "logging", "os", "pathlib", "re", "sqlite3", "string",
           "subprocess", "tarfile", "threading", "typing", "unittest", "urllib.request",
           "xml.etree.ElementTree", "zipfile", "shutil", "socket", "decimal", "statistics",
           "itertools", "inspect", "textwrap", "tkinter", "ftplib", "imaplib", "smtplib",
           "configparser", "pickle", "random", "uuid", "difflib", "calendar")
SPEED_CHUNKS = 64
BATCHES = (8, 32, 64)
REPEATS = 3
INDEX_CHUNKS = 10_000
NOISE = 0.02
QUERIES = ["How do I parse command line arguments?", "read a CSV file into rows",
           "run a shell command and capture its output", "format a date as a string",
           "send an email over SMTP", "compare two sequences of lines", "create a temporary file",
           "How do thread locks work?", "decode JSON from a string", "walk a directory tree",
           "regular expression that matches digits", "connect to a SQLite database",
           "log messages to a file", "generate a random UUID", "compress files into a zip archive",
           "What is a named tuple?", "round a decimal number", "compute the median of numbers",
           "open a URL and read the response", "parse an XML document"]


def _corpus() -> list[str]:
    chunks: list[str] = []
    for name in MODULES:
        try:
            text = pydoc.render_doc(importlib.import_module(name), renderer=pydoc.plaintext)
        except Exception:  # a module missing from this Python build: skip it
            continue
        chunks += split_text(text)
    return chunks


def _embed(texts: list[str], batch: int) -> tuple[float, np.ndarray]:
    embedder = load_embeddings(batch_size=batch)
    started = time.perf_counter()
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    return len(texts) / (time.perf_counter() - started), vectors


def large_collection(texts: list[str], vectors: np.ndarray, root: Path) -> Collection:
    """A collection of INDEX_CHUNKS chunks at ``root``: the real ``vectors`` plus noisy,
    renormalised copies of them (so a search has near neighbours to sort out), the texts
    repeated beside them; what the query-latency figures of ``bench rag`` and ``bench
    indexing`` search."""
    rng = np.random.default_rng(0)
    copies = [vectors]
    while sum(len(c) for c in copies) < INDEX_CHUNKS:
        noisy = vectors + rng.normal(0, NOISE, vectors.shape).astype(np.float32)
        copies.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
    all_vectors = np.concatenate(copies)[:INDEX_CHUNKS]
    all_texts = (texts * (INDEX_CHUNKS // len(texts) + 1))[:INDEX_CHUNKS]
    coll = Collection("bench", root=root)
    step = 1000
    for start in range(0, INDEX_CHUNKS, step):
        coll.add_texts(f"doc-{start // step}", all_texts[start:start + step],
                       np.ascontiguousarray(all_vectors[start:start + step]))
    return coll


def _index_latency(real: list[str], vectors: np.ndarray) -> dict[str, Any]:
    """p50/p95 of Collection.search on INDEX_CHUNKS chunks (real vectors plus noisy copies)."""
    embedder = load_embeddings()
    root = Path(tempfile.mkdtemp(prefix="ert-bench-rag-"))
    try:
        coll = large_collection(real, vectors, root)
        coll.search(QUERIES[0], embedder)  # warm-up
        latencies, search_only, hits = [], [], 0
        for _ in range(3):
            for query in QUERIES:
                started = time.perf_counter()
                hits += bool(coll.search(query, embedder, k=4))
                latencies.append(time.perf_counter() - started)
                vec = np.asarray([embedder.embed_query(query)], dtype=np.float32)
                started = time.perf_counter()
                coll.search_vector(vec, k=4)
                search_only.append(time.perf_counter() - started)
        size = len(coll)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ms, faiss_ms = np.asarray(latencies) * 1000, np.asarray(search_only) * 1000
    return {"chunks": size, "real chunks": len(real), "queries": len(latencies),
            "p50 ms": float(np.percentile(ms, 50)), "p95 ms": float(np.percentile(ms, 95)),
            "FAISS-only p50 ms": float(np.percentile(faiss_ms, 50)),
            "FAISS-only p95 ms": float(np.percentile(faiss_ms, 95)),
            "queries with hits": hits}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    corpus = _corpus()
    need = SPEED_CHUNKS * len(BATCHES) * REPEATS + 16
    if len(corpus) < need:
        raise SystemExit(f"only {len(corpus)} chunks of text; need {need}")
    np.random.default_rng(0).shuffle(corpus)  # every slice: the same mix of modules
    print(f"  corpus: {len(corpus)} chunks, mean {np.mean([len(c) for c in corpus]):.0f} chars",
          file=sys.stderr, flush=True)
    _embed(corpus[-16:], 8)  # warm-up: weights paged in
    rates: dict[int, list[float]] = {b: [] for b in BATCHES}
    real: list[str] = []
    vectors = []
    for rep in range(REPEATS):
        for batch in BATCHES[rep % len(BATCHES):] + BATCHES[:rep % len(BATCHES)]:
            texts = corpus[len(real):len(real) + SPEED_CHUNKS]
            rate, vecs = _embed(texts, batch)
            rates[batch].append(rate)
            real += texts
            vectors.append(vecs)
        print(f"  repeat {rep + 1}: " + ", ".join(f"b{b} {rates[b][-1]:.1f}/s" for b in BATCHES),
              file=sys.stderr, flush=True)
    base = median(rates[8])
    speed_rows = [{"batch": b, "chunks/s median": median(rates[b]), "min": min(rates[b]),
                   "max": max(rates[b]), "x batch 8": median(rates[b]) / base} for b in BATCHES]
    print(table(speed_rows, f"all-MiniLM-L6-v2 embedding, {SPEED_CHUNKS} chunks a run "
                            f"(~{np.mean([len(c) for c in real]):.0f} chars), median of {REPEATS}"))
    query_row = _index_latency(real, np.concatenate(vectors))
    print(table([query_row], "Collection.search (embed query + FAISS flat inner product, k=4), "
                             f"{len(real)} real vectors + noisy copies"))
    result = {"corpus_chunks": len(corpus), "speed_rows": speed_rows, "rates": rates,
              "query": query_row, "best_batch_vs_8": max(r["x batch 8"] for r in speed_rows)}
    print(f"saved {save('rag', result)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
