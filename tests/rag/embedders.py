"""A fast stand-in for MiniLM in unit tests of retrieval logic (the real model has its own)."""

import zlib

import numpy as np


class HashEmbedder:
    """A deterministic bag-of-words embedder: fast, and similar texts score higher."""

    dim = 384

    def _vec(self, text: str) -> list[float]:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in text.lower().split():
            # crc32, not hash(): str hashes change with every process (PYTHONHASHSEED)
            v[zlib.crc32(word.strip(".,?!").encode()) % self.dim] += 1.0
        n = np.linalg.norm(v)
        return (v / n if n else v).tolist()

    def embed_documents(self, texts):
        return [self._vec(t) for t in texts]

    def embed_query(self, text):
        return self._vec(text)
