"""What each model really cost on this machine: peak memory, retained memory, speed, load time.

Every model turn of every run adds one row (the worker writes it), keyed by the
model's identity, the device and the dtype it ran in. The planner prefers these
figures to its derived estimate and says which it used; the time estimate uses
the measured speed. Kept beside the transcription cache (``ERT_CACHE_DIR``) in
SQLite from the standard library: nothing is unpickled.
"""

from __future__ import annotations

from core import paths
from core.asr.spec import AsrModelSpec
from core.devices import device_kind

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

_SCHEMA = ("CREATE TABLE IF NOT EXISTS measurements (id INTEGER PRIMARY KEY, model TEXT NOT NULL, "
           "row TEXT NOT NULL)")


@dataclass(frozen=True)
class Measurement:
    """One model turn: what it took above the worker's memory before the model loaded."""

    device: str
    dtype: str | None
    batch_size: int | None  # the largest batch it ran
    clip_seconds: float | None  # its longest clip
    peak_gb: float  # peak RSS growth of the worker while the model was loaded and running
    retained_gb: float | None  # RSS growth still held after the model was freed
    peak_gpu_gb: float | None
    rtfx: float | None  # model RTFx on the clips it transcribed
    load_seconds: float | None
    measured: float  # when (seconds since the epoch)
    # Workers sharing the device during the turn, and this worker's audio seconds per wall
    # second of decoding (core.evaluation.replicas compares them); absent in older rows.
    replicas: int | None = None
    throughput: float | None = None

    @property
    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.measured))


def identity(spec: AsrModelSpec, device: str, dtype: str | None) -> str:
    """What a measurement depends on: the model (key, source, revision, backend), the device
    kind and the dtype."""
    return json.dumps({"model": spec.key, "source": spec.source, "revision": spec.revision,
                       "backend": spec.backend, "device": device_kind(device), "dtype": dtype},
                      sort_keys=True)


def default_path() -> Path:
    return paths.cache_dir("measurements") / "measurements.sqlite"


def last_change(path: Path | None = None) -> float:
    """When the store last changed (the latest mtime of its files, 0 when it has none): a
    key for caches of what it says, such as a model picker's figures."""
    path = path or default_path()
    times = [p.stat().st_mtime for p in (path, path.with_name(path.name + "-wal"))
             if p.exists()]
    return max(times, default=0.0)


class MeasurementStore:
    """Append and look up measurements; safe across threads and processes."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def add(self, spec: AsrModelSpec, measurement: Measurement) -> None:
        key = identity(spec, measurement.device, measurement.dtype)
        with self._lock:
            self._db.execute("INSERT INTO measurements (model, row) VALUES (?, ?)",
                             (key, json.dumps(asdict(measurement))))
            self._db.commit()

    def all(self, spec: AsrModelSpec, device: str, dtype: str | None) -> list[Measurement]:
        """Oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT row FROM measurements WHERE model = ? ORDER BY id",
                                    (identity(spec, device, dtype),)).fetchall()
        known = {f.name for f in fields(Measurement)}
        return [Measurement(**{k: v for k, v in json.loads(r[0]).items() if k in known})
                for r in rows]

    def need(self, spec: AsrModelSpec, device: str, dtype: str | None,
             clip_seconds: float | None = None) -> Measurement | None:
        """The measurement the planner should trust: of those whose clips were at least
        this long (or any, when the lengths are unknown), the one that peaked highest."""
        found = self.all(spec, device, dtype)
        if clip_seconds is not None:
            long_enough = [m for m in found if m.clip_seconds is None
                           or m.clip_seconds >= 0.8 * clip_seconds]
            found = long_enough or []
        return max(found, key=lambda m: m.peak_gb, default=None)

    def speed(self, spec: AsrModelSpec, device: str, dtype: str | None) -> Measurement | None:
        """The latest turn that measured a speed with the device to itself."""
        timed = [m for m in self.all(spec, device, dtype) if m.rtfx and (m.replicas or 1) == 1]
        return timed[-1] if timed else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
