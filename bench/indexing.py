"""Indexing speed and query latency before/after issue 30: bf16 autocast embeddings and files
read while the previous one is embedded.

``python -m bench indexing [-- --repeats N]`` — real text (Python's stdlib documentation, as
``bench rag``) written as ``FILES`` files of ~``CHUNKS_PER_FILE`` chunks each, indexed into a
fresh :class:`core.rag.store.Collection` by:

* **before** (baseline): the page's old loop, ``read_document`` + ``Collection.add_document``
  file after file, MiniLM in fp32;
* fp32 with read-ahead: :func:`core.rag.ingest.ingest`, MiniLM in fp32;
* **after**: :func:`core.rag.ingest.ingest` with ``load_embeddings()`` (bf16 autocast where
  the CPU has bf16).

Each at 1 and 2 torch threads (``--threads``): on the project's shared cores a second OpenMP
thread often slowed MiniLM down. Interleaved (the order rotates), median chunks/s of
``--repeats``; the embedders are loaded once, before timing. Then the agreement of bf16 and
fp32 vectors (cosine), and p50/p95 of ``Collection.search`` on a 10,000-chunk collection (the
real vectors plus noisy copies, as ``bench rag``) with each embedder's query vectors, in
blocks of 20 queries interleaved.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.rag.documents import read_document
from core.rag.embeddings import load_embeddings
from core.rag.ingest import ingest
from core.rag.store import Collection

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import median, save, table
from bench.rag import QUERIES, _corpus, large_collection

FILES = 4
CHUNKS_PER_FILE = 32


def _log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def _files(corpus: list[str]) -> list[tuple[str, bytes]]:
    return [(f"stdlib-{i}.txt",
             "\n\n".join(corpus[i * CHUNKS_PER_FILE:(i + 1) * CHUNKS_PER_FILE]).encode())
            for i in range(FILES)]


def _before(files: list[tuple[str, bytes]], embedder: Any, root: Path) -> int:
    collection = Collection("before", root=root)
    return sum(collection.add_document(read_document(name, data), embedder)
               for name, data in files)


def _ingest(files: list[tuple[str, bytes]], embedder: Any, root: Path) -> int:
    collection = Collection("after", root=root)
    sources = [(name, (lambda d=data: d), len(data)) for name, data in files]
    return ingest(collection, sources, embedder).chunks


def _latency(vectors: np.ndarray, texts: list[str], embedders: dict[str, Any],
             counts: list[int]) -> list[dict]:
    """p50/p95 of ``Collection.search`` per query embedder and torch thread count."""
    import torch

    root = Path(tempfile.mkdtemp(prefix="ert-bench-indexing-"))
    try:
        coll = large_collection(texts, vectors, root)
        for embedder in embedders.values():
            coll.search(QUERIES[0], embedder)  # warm-up (BM25 built once)
        names = [(name, t) for t in counts for name in embedders]
        times: dict[tuple[str, int], list[float]] = {key: [] for key in names}
        faiss_only: list[float] = []
        for rep in range(4):  # each embedder answers a block of queries (as the app does,
            # one model warm in the caches), blocks interleaved between the embedders
            for name, t in names[rep % len(names):] + names[:rep % len(names)]:
                torch.set_num_threads(t)
                for query in QUERIES:
                    started = time.perf_counter()
                    coll.search(query, embedders[name], k=4)
                    times[(name, t)].append(time.perf_counter() - started)
            torch.set_num_threads(max(counts))
            for query in QUERIES:
                vec = np.asarray([embedders["after"].embed_query(query)], dtype=np.float32)
                started = time.perf_counter()
                coll.search_vector(vec, k=4)
                faiss_only.append(time.perf_counter() - started)
        size = len(coll)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = [{"query embedder": name, "threads": t, "chunks": size, "queries": len(ts),
             "p50 ms": float(np.percentile(np.asarray(ts) * 1000, 50)),
             "p95 ms": float(np.percentile(np.asarray(ts) * 1000, 95))}
            for (name, t), ts in times.items()]
    rows.append({"query embedder": "FAISS search alone", "threads": max(counts), "chunks": size,
                 "queries": len(faiss_only),
                 "p50 ms": float(np.percentile(np.asarray(faiss_only) * 1000, 50)),
                 "p95 ms": float(np.percentile(np.asarray(faiss_only) * 1000, 95))})
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench indexing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default="1,2", help="torch thread counts to compare")
    args = parser.parse_args(argv)
    import torch

    counts = [int(t) for t in args.threads.split(",")]
    corpus = _corpus()
    np.random.default_rng(0).shuffle(corpus)
    files = _files(corpus)
    fp32, after = load_embeddings(bf16=False), load_embeddings()
    _log(f"{FILES} files, {sum(len(d) for _, d in files) / 1e3:.0f} kB; bf16 autocast: "
         f"{after.bf16}")
    kinds = {
        "before: add_document file by file, fp32": lambda root: _before(files, fp32, root),
        "fp32, next file read while embedding": lambda root: _ingest(files, fp32, root),
        "after: ingest, bf16 autocast": lambda root: _ingest(files, after, root),
    }
    variants = {(name, t): run for t in counts for name, run in kinds.items()}
    _ingest(files[:1], after, Path(tempfile.mkdtemp(prefix="ert-bench-warm-")))
    _before(files[:1], fp32, Path(tempfile.mkdtemp(prefix="ert-bench-warm-")))
    rates: dict[tuple[str, int], list[float]] = {key: [] for key in variants}
    chunks = 0
    names = list(variants)
    for rep in range(args.repeats):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            root = Path(tempfile.mkdtemp(prefix="ert-bench-indexing-"))
            torch.set_num_threads(name[1])
            try:
                started = time.perf_counter()
                chunks = variants[name](root)
                rates[name].append(chunks / (time.perf_counter() - started))
            finally:
                shutil.rmtree(root, ignore_errors=True)
        _log(f"repeat {rep + 1}: " + ", ".join(f"{n[0][:6]}/{n[1]} {rates[n][-1]:.1f}"
                                              for n in names))
    torch.set_num_threads(max(counts))
    rows = [{"variant": name, "threads": t, "chunks": chunks, "chunks/s median": median(rs),
             "min": min(rs), "max": max(rs),
             "x before (same threads)": median(rs) / median(rates[(names[0][0], t)]),
             "x before at 2 threads": median(rs) / median(rates[(names[0][0], max(counts))])}
            for (name, t), rs in rates.items()]
    print(table(rows, f"indexing {FILES} files ({chunks} chunks), median of {args.repeats}"))

    texts = [t for _, data in files for t in data.decode().split("\n\n")][:256]
    v32 = np.asarray(fp32.embed_documents(texts), dtype=np.float32)
    v16 = np.asarray(after.embed_documents(texts), dtype=np.float32)
    cosine = (v32 * v16).sum(1) / (np.linalg.norm(v32, axis=1) * np.linalg.norm(v16, axis=1))
    agreement = {"texts": len(texts), "cosine min": f"{cosine.min():.5f}",
                 "cosine mean": f"{cosine.mean():.5f}",
                 "same top-1 neighbour": float(np.mean(
                     (v32 @ v32.T - 2 * np.eye(len(texts))).argmax(1)
                     == (v16 @ v16.T - 2 * np.eye(len(texts))).argmax(1)))}
    print(table([agreement], "bf16 autocast vectors against fp32"))
    query_rows = _latency(v16, texts, {"before (fp32)": fp32, "after": after}, counts)
    print(table(query_rows, "Collection.search (embed query + FAISS + BM25, k=4)"))
    result = {"rows": rows, "rates": {f"{n} / {t} thr": r for (n, t), r in rates.items()},
              "agreement": agreement, "query": query_rows,
              "bf16": after.bf16, "load_average": os.getloadavg()}
    print(f"saved {save('indexing', result)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
