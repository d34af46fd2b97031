"""Persistent collections of document chunks, searched dense + lexical.

LangChain's ``FAISS.save_local`` pickles its docstore, and loading it means
unpickling whatever is on disk. ERT instead stores the index in FAISS's own
binary format, the chunks as JSON lines and the BM25 index as numpy arrays
and JSON, so a reload parses data and never executes it.

:meth:`Collection.search` fuses the MiniLM/FAISS ranking with BM25 by
reciprocal rank fusion and keeps only chunks near the best hit of either
ranking (:mod:`core.rag.fusion`); a hit's ``score`` stays the cosine
similarity, the one figure users can compare between questions.
"""

from __future__ import annotations

from core import paths
from core.files import temporary_sibling, write_atomic
from core.rag.chunking import chunk_document
from core.rag.documents import Document
from core.rag.fusion import above_relative_floor, ranking, reciprocal_rank_fusion
from core.rag.lexical import LexicalIndex

import json
import os
import re
import shutil
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

INDEX_FILE = "index.faiss"
CHUNKS_FILE = "chunks.jsonl"
META_FILE = "meta.json"
LEXICAL_DIR = "bm25"
DEFAULT_MIN_SCORE = 0.2  # cosine under which a chunk is unrelated (MiniLM)
CANDIDATES = 20  # per ranking, before fusion
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Embedder(Protocol):
    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...
    def embed_query(self, text: str) -> list[float]: ...


class CollectionError(ValueError):
    """A bad collection name or an unreadable collection folder."""


@dataclass(frozen=True)
class Chunk:
    id: int
    source: str
    index: int
    text: str


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk: ``score`` is its cosine similarity to the query; ``lexical``
    its BM25 score and ``fused`` its reciprocal-rank-fusion score (the order)."""

    chunk: Chunk
    score: float
    lexical: float = 0.0
    fused: float = 0.0


def check_name(name: str) -> str:
    """Collection names become folder names: letters, digits, ``_.-`` only."""
    name = name.strip()
    if not _NAME_RE.match(name) or ".." in name:
        raise CollectionError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_', '.' or '-'")
    return name


def list_collections(root: Path | None = None) -> list[str]:
    root = root or paths.collections_dir()
    return sorted(p.name for p in root.iterdir() if (p / META_FILE).exists()) if root.exists() \
        else []


def _vectors(rows: Sequence[Sequence[float]]) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(rows, dtype=np.float32))


class Collection:
    """Chunks of documents with their vectors; thread-safe, saved after each change."""

    def __init__(self, name: str, root: Path | None = None, dim: int = 384) -> None:
        import faiss

        self.name = check_name(name)
        self.folder = (root or paths.collections_dir()) / self.name
        self._lock = threading.RLock()
        self.dim = dim
        self.chunks: dict[int, Chunk] = {}
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._lexical: LexicalIndex | None = LexicalIndex()
        if (self.folder / META_FILE).exists():
            self._load()

    # -- persistence -------------------------------------------------------
    def _load(self) -> None:
        import faiss

        try:
            meta = json.loads((self.folder / META_FILE).read_text(encoding="utf-8"))
            self.dim = int(meta["dim"])
            self.index = faiss.read_index(str(self.folder / INDEX_FILE))
            with (self.folder / CHUNKS_FILE).open(encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        chunk = Chunk(**json.loads(line))
                        self.chunks[chunk.id] = chunk
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CollectionError(f"collection {self.name!r} is unreadable: {exc}") from exc
        if self.index.ntotal != len(self.chunks):
            raise CollectionError(
                f"collection {self.name!r} is inconsistent: {self.index.ntotal} vectors for "
                f"{len(self.chunks)} chunks; delete and rebuild it")
        self._lexical = None  # rebuilt from the chunks unless a matching one is on disk
        try:
            lexical = LexicalIndex.load(self.folder / LEXICAL_DIR)
            if sorted(lexical.ids) == sorted(self.chunks):
                self._lexical = lexical
        except (OSError, ValueError, KeyError, TypeError):
            pass  # written by an older ERT, or damaged: rebuilt on first search

    @property
    def lexical(self) -> LexicalIndex:
        """The BM25 index over the current chunks (rebuilt after a change)."""
        with self._lock:
            if self._lexical is None:
                ids = list(self.chunks)
                self._lexical = LexicalIndex.build(ids, [self.chunks[i].text for i in ids])
            return self._lexical

    def save(self) -> None:
        import faiss

        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp_index = temporary_sibling(self.folder / INDEX_FILE)
            faiss.write_index(self.index, str(tmp_index))
            os.replace(tmp_index, self.folder / INDEX_FILE)
            write_atomic(self.folder / CHUNKS_FILE, "".join(
                json.dumps(asdict(c), ensure_ascii=False) + "\n" for c in self.chunks.values()))
            self.lexical.save(self.folder / LEXICAL_DIR)
            write_atomic(self.folder / META_FILE, json.dumps(
                {"name": self.name, "dim": self.dim, "chunks": len(self.chunks)}))

    def delete(self) -> None:
        with self._lock:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.chunks.clear()
            self.index.reset()
            self._lexical = None

    # -- content -----------------------------------------------------------
    def __len__(self) -> int:
        return len(self.chunks)

    def documents(self) -> dict[str, int]:
        """Document name -> number of chunks."""
        counts: dict[str, int] = {}
        for chunk in self.chunks.values():
            counts[chunk.source] = counts.get(chunk.source, 0) + 1
        return counts

    def remove_document(self, source: str) -> int:
        with self._lock:
            ids = [cid for cid, c in self.chunks.items() if c.source == source]
            if ids:
                self.index.remove_ids(np.asarray(ids, dtype=np.int64))
                for cid in ids:
                    del self.chunks[cid]
                self._lexical = None
            return len(ids)

    def add_texts(self, source: str, texts: list[str], vectors: np.ndarray) -> int:
        """Add pre-embedded chunks of one source (replacing that source's old chunks)."""
        if vectors.shape != (len(texts), self.dim):
            raise CollectionError(f"expected {len(texts)}x{self.dim} vectors, got {vectors.shape}")
        with self._lock:
            self.remove_document(source)
            start = max(self.chunks, default=-1) + 1
            ids = np.arange(start, start + len(texts), dtype=np.int64)
            self.index.add_with_ids(vectors, ids)
            for offset, (cid, text) in enumerate(zip(ids.tolist(), texts, strict=True)):
                self.chunks[cid] = Chunk(id=cid, source=source, index=offset, text=text)
            self._lexical = None
            return len(texts)

    def add_document(self, doc: Document, embedder: Embedder, save: bool = True) -> int:
        texts = chunk_document(doc.text)
        vectors = _vectors(embedder.embed_documents(texts))
        added = self.add_texts(doc.name, texts, vectors)
        if save:
            self.save()
        return added

    def search_vector(self, vector: np.ndarray, k: int = 4,
                      min_score: float = DEFAULT_MIN_SCORE) -> list[Hit]:
        with self._lock:
            if not self.chunks:
                return []
            scores, ids = self.index.search(vector.reshape(1, -1), min(k, len(self.chunks)))
            return [Hit(self.chunks[int(i)], float(s))
                    for s, i in zip(scores[0], ids[0], strict=True)
                    if i != -1 and s >= min_score]

    def search(self, query: str, embedder: Embedder, k: int = 4,
               min_score: float = DEFAULT_MIN_SCORE, hybrid: bool = True) -> list[Hit]:
        """The ``k`` best chunks for ``query``: dense and BM25 rankings fused.

        A chunk is a candidate when its cosine reaches ``min_score`` or it shares
        terms with the query, and is kept only if it scores at least
        :data:`~core.rag.fusion.RELATIVE_FLOOR` of the best hit in either ranking.
        ``hybrid=False`` is the dense ranking alone (for comparison).
        """
        if not query.strip() or not self.chunks:
            return []
        vector = _vectors([embedder.embed_query(query)])
        with self._lock:
            dense = {h.chunk.id: h.score
                     for h in self.search_vector(vector, max(k, CANDIDATES), min_score)}
            lexical = self.lexical.scores(query) if hybrid else {}
            lexical = {cid: lexical[cid] for cid in ranking(lexical)[:max(k, CANDIDATES)]}
            fused = reciprocal_rank_fusion([ranking(dense), ranking(lexical)])
            hits = []
            for cid, fused_score in fused.items():
                if not above_relative_floor(cid, [dense, lexical]):
                    continue
                cosine = dense.get(cid)
                if cosine is None:  # found by BM25 alone: its cosine for display
                    cosine = float(self.index.reconstruct(cid) @ vector[0])
                hits.append(Hit(self.chunks[cid], cosine, lexical.get(cid, 0.0), fused_score))
            return hits[:k]


def describe(collection: Collection) -> dict[str, Any]:
    return {"name": collection.name, "chunks": len(collection),
            "documents": collection.documents()}
