"""A transcription cache shared by runs: identical work is done once.

The key covers everything that can change a transcript: the model (key,
source, revision), the decoding options and the audio content itself (a
SHA-256 of the decoded samples, so a renamed or re-encoded copy of the same
audio still hits). SQLite from the standard library; nothing is unpickled.
"""

from __future__ import annotations

from core import paths
from core.asr.base import DecodeOptions
from core.asr.spec import AsrModelSpec

import hashlib
import json
import sqlite3
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np

_SCHEMA = "CREATE TABLE IF NOT EXISTS transcripts (key TEXT PRIMARY KEY, text TEXT NOT NULL)"


def audio_hash(audio: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()


def cache_key(spec: AsrModelSpec, options: DecodeOptions, audio_sha: str) -> str:
    decoding = {k: v for k, v in asdict(options).items() if k != "batch_size"}
    ident = json.dumps({"model": spec.key, "source": spec.source, "revision": spec.revision,
                        "backend": spec.backend, "decode": decoding, "audio": audio_sha},
                       sort_keys=True, default=str)
    return hashlib.sha256(ident.encode()).hexdigest()


class TranscriptCache:
    """``get``/``put`` transcripts by key; safe across threads and processes."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths.cache_dir("transcripts") / "transcripts.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT text FROM transcripts WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, text: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO transcripts (key, text) VALUES (?, ?)",
                             (key, text))
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()
