"""A transcription cache shared by runs: identical work is done once.

It also keeps, per model and device, the batch size the tuner last settled on,
so a later or resumed run starts there instead of at 1; per model, device and
dataset, the step sizes a run used, so a repeated run decodes each clip at the
same size (:mod:`core.evaluation.tuning`); and the compute time each transcript
took, so a fully cached model still has a known speed.

The key covers everything that can change a transcript: the model (key,
source, revision), the decoding options and the audio content itself (a
SHA-256 of the decoded samples, so a renamed or re-encoded copy of the same
audio still hits). SQLite from the standard library; nothing is unpickled.
"""

from __future__ import annotations

from core import paths
from core.asr.base import DecodeOptions
from core.asr.spec import AsrModelSpec
from core.conditions import CLEAN

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

_SCHEMA = ("CREATE TABLE IF NOT EXISTS transcripts (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
           "seconds REAL)",
           "CREATE TABLE IF NOT EXISTS batch_sizes (key TEXT PRIMARY KEY, size INTEGER NOT NULL)",
           "CREATE TABLE IF NOT EXISTS batch_schedules (key TEXT PRIMARY KEY, steps TEXT NOT NULL)")


@dataclass(frozen=True)
class CachedTranscript:
    text: str
    seconds: float | None  # the compute time it took when it was made (None: not recorded)


def audio_hash(audio: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()


def tuning_key(spec: AsrModelSpec, device: str, dtype: str | None = None,
               dataset: dict[str, object] | None = None) -> str:
    """What a remembered batch size depends on: the model, the device and the dtype; a
    remembered schedule also on the ``dataset`` (its source, sample count, seed, decoding
    options: what decides which clip comes at which step)."""
    ident = {"model": spec.key, "source": spec.source, "revision": spec.revision,
             "backend": spec.backend, "device": device, "dtype": dtype}
    if dataset is not None:
        ident["dataset"] = dataset
    return json.dumps(ident, sort_keys=True, default=str)


def cache_key(spec: AsrModelSpec, options: DecodeOptions, audio_sha: str,
              dtype: str | None = None, condition: str | None = None) -> str:
    """The weights' dtype is part of it: a bf16 transcript may differ from an fp32 one. So
    is a robustness ``condition`` (core.conditions): the hash of the perturbed audio already
    tells them apart, the condition says so outright; clean (or none) leaves the key as it
    was, so clean clips share their transcripts with runs without conditions."""
    decoding = {k: v for k, v in asdict(options).items() if k != "batch_size"}
    fields: dict[str, object] = {
        "model": spec.key, "source": spec.source, "revision": spec.revision,
        "backend": spec.backend, "decode": decoding, "audio": audio_sha, "dtype": dtype}
    if condition not in (None, CLEAN):
        fields["condition"] = condition
    ident = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(ident.encode()).hexdigest()


class TranscriptCache:
    """``get``/``put`` transcripts by key, and the batch size each model last settled on;
    safe across threads and processes."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths.cache_dir("transcripts") / "transcripts.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(transcripts)")}
        if "seconds" not in columns:  # a cache written before speeds were kept
            self._db.execute("ALTER TABLE transcripts ADD COLUMN seconds REAL")
        self._db.commit()

    def get(self, key: str) -> CachedTranscript | None:
        with self._lock:
            row = self._db.execute("SELECT text, seconds FROM transcripts WHERE key = ?",
                                   (key,)).fetchone()
        return None if row is None else CachedTranscript(str(row[0]), row[1])

    def put_many(self, items: Iterable[tuple[str, str, float | None]]) -> None:
        """Store (key, text, seconds) transcripts in one transaction: a batch's cost one
        flush to disk, not one each (0.25 ms a transcript here)."""
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO transcripts (key, text, seconds) "
                                 "VALUES (?, ?, ?)", list(items))
            self._db.commit()

    def batch_size(self, key: str) -> int | None:
        """The batch size the tuner settled on last time for this model and device."""
        with self._lock:
            row = self._db.execute("SELECT size FROM batch_sizes WHERE key = ?",
                                   (key,)).fetchone()
        return None if row is None else int(row[0])

    def remember_batch_size(self, key: str, size: int) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO batch_sizes (key, size) VALUES (?, ?)",
                             (key, size))
            self._db.commit()

    def batch_schedule(self, key: str) -> list[int] | None:
        """The step sizes an earlier run of this model on this dataset used (see
        :func:`tuning_key`), to be followed again."""
        with self._lock:
            row = self._db.execute("SELECT steps FROM batch_schedules WHERE key = ?",
                                   (key,)).fetchone()
        steps = json.loads(row[0]) if row else None
        return [int(s) for s in steps] if steps and all(int(s) > 0 for s in steps) else None

    def remember_batch_schedule(self, key: str, steps: list[int]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO batch_schedules (key, steps) VALUES (?, ?)",
                             (key, json.dumps(steps)))
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()
