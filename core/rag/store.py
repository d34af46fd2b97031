"""Persistent FAISS collections of document chunks.

LangChain's ``FAISS.save_local`` pickles its docstore, and loading it means
unpickling whatever is on disk. ERT instead stores the index in FAISS's own
binary format and the chunks as JSON lines, so a reload parses data and never
executes it.
"""

from __future__ import annotations

from core import paths
from core.rag.chunking import split_text
from core.rag.documents import Document

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
DEFAULT_MIN_SCORE = 0.2
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
    chunk: Chunk
    score: float


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


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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

    def save(self) -> None:
        import faiss

        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp_index = self.folder / (INDEX_FILE + ".tmp")
            faiss.write_index(self.index, str(tmp_index))
            os.replace(tmp_index, self.folder / INDEX_FILE)
            _atomic_write(self.folder / CHUNKS_FILE, "".join(
                json.dumps(asdict(c), ensure_ascii=False) + "\n" for c in self.chunks.values()))
            _atomic_write(self.folder / META_FILE, json.dumps(
                {"name": self.name, "dim": self.dim, "chunks": len(self.chunks)}))

    def delete(self) -> None:
        with self._lock:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.chunks.clear()
            self.index.reset()

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
            return len(texts)

    def add_document(self, doc: Document, embedder: Embedder, save: bool = True) -> int:
        texts = split_text(doc.text)
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
               min_score: float = DEFAULT_MIN_SCORE) -> list[Hit]:
        """The ``k`` chunks most similar to ``query`` (cosine), above ``min_score``."""
        if not query.strip() or not self.chunks:
            return []
        return self.search_vector(_vectors([embedder.embed_query(query)]), k, min_score)


def describe(collection: Collection) -> dict[str, Any]:
    return {"name": collection.name, "chunks": len(collection),
            "documents": collection.documents()}
