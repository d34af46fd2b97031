"""The run's append-only logs: one JSON line per finished sample, one per model outcome.

Each batch's lines are written and fsync'd as soon as they are known, so a run
killed at any moment keeps every finished sample; a torn last line (killed mid-write)
is ignored on reading. Resuming skips exactly the (model, sample) pairs
already recorded, failures included: a failure is data, not a to-do.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SampleRecord:
    """One (model, sample) result: the per-sample manifest format used everywhere."""

    id: str
    model: str
    batch: str
    audio_filepath: str | None
    reference: str
    hypothesis: str
    language: str | None
    duration: float | None
    time: float  # its share of the model's compute for its batch (0 when cached or failed)
    error: str | None = None
    batch_size: int | None = None
    cached: bool = False
    # The language the model decoded in: the one asked for, or the one it detected.
    decoded_language: str | None = None
    # Why the model was not run on this sample (e.g. a language it does not transcribe):
    # neither a success nor a failure, and left out of every score.
    skipped: str | None = None
    decode_seconds: float | None = None  # reading and resampling its audio
    latency: float | None = None  # from the start of its batch's step to its result
    cached_time: float | None = None  # served from the cache: the compute time it took then
    device: str | None = None  # where it ran, with several workers ("cuda:1", "cpu")
    # The dataset row's other columns (speaker, accent, …): what results are sliced by.
    extra: dict[str, Any] = field(default_factory=dict)
    # The robustness condition the clip was heard under ("clean", "noise:snr=10", …;
    # core.conditions); None in a run without conditions. Part of the sample's identity: the
    # id of a perturbed clip is "<clip>@<condition>".
    condition: str | None = None


@dataclass
class ModelRecord:
    """How a model's turn ended: ``ok``, ``failed``, ``stopped: memory`` or ``cancelled``;
    or, while it runs, ``running``: the turn's checkpoints, so that a worker killed mid-turn
    (SIGKILL, OOM killer) still leaves its load time, peaks and tuning curve on disk. Lines of
    one turn share ``turn``; the last one says how far it got (:meth:`RunRecords.turns`)."""

    model: str
    batch: str
    status: str
    error: str | None = None
    load_seconds: float | None = None
    dtype: str | None = None  # what the weights loaded in ("bfloat16", "int8", …)
    batch_size: int | None = None
    batch_curve: list[dict[str, float]] = field(default_factory=list)
    batch_steps: list[int] = field(default_factory=list)  # the size asked for at each step
    batch_replayed: bool = False  # the steps followed an earlier run's (same dataset)
    peak_rss_gb: float | None = None
    peak_gpu_gb: float | None = None
    samples_done: int = 0
    packing_retries: int = 0  # packed-window clips decoded again alone (runaway guard)
    peak_growth_gb: float | None = None  # peak RSS above the worker's before the model loaded
    retained_gb: float | None = None  # RSS still above that once the model was freed
    started: float | None = None
    ended: float | None = None
    shard: str | None = None  # "2/4": this record covers one worker's share of the samples
    device: str | None = None
    node: str | None = None  # the host that ran it
    turn: str | None = None  # "host:pid:started": the worker turn this line belongs to
    updated: float | None = None  # when this line was written (a checkpoint's time)
    compute_seconds: float = 0.0  # model compute of the samples it transcribed
    # False: every sample it had was served from the cache, so it was never loaded.
    loaded: bool = True
    # The batch-invariance check (``--check-batch-invariance``): the clips re-decoded at
    # batch size 1, {"batch_sizes": {id: size}, "single": {id: text}} (scored by results).
    invariance: dict[str, Any] | None = None


class JsonlLog:
    """Append JSON lines durably from any thread and any process.

    Each call's lines are one ``write`` on an ``O_APPEND`` descriptor, then one ``fsync``:
    the kernel puts them whole at the end of the file, so data-parallel workers can share
    one log without interleaving, and a batch's lines cost one flush to disk, not one each
    (0.23 ms a line here: 15 ms of every batch of 64, with the GPU waiting).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, row: dict[str, Any]) -> None:
        self.extend([row])

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
        if not data:
            return
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                left = memoryview(data)
                while left:  # more than one write only on a full disk or a signal
                    left = left[os.write(fd, left):]
                os.fsync(fd)
            finally:
                os.close(fd)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete line; a torn or garbled line (a crash mid-write) is skipped."""
    return read_jsonl_from(path)[0]


def read_jsonl_from(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The complete lines from byte ``offset`` on, and the offset after the last of them,
    where the next read starts (a log read as it grows, a line at most once)."""
    if not path.exists():
        return [], offset
    rows = []
    with path.open("rb") as handle:
        handle.seek(offset)
        for line in handle:
            if not line.endswith(b"\n"):
                break  # the last write was cut short, or is being written
            offset += len(line)
            try:
                rows.append(json.loads(line.decode("utf-8", errors="replace")))
            except ValueError:
                continue
    return rows, offset


TORN_RECHECK_S = 0.2  # a torn tail still growing after this is a write going on, not a crash


def repair_tail(path: Path) -> None:
    """Cut a torn last line (a crash mid-write) so the next append starts on a fresh line.

    Only a run's sole writer may call it, before it writes (:class:`RunRecords` with
    ``repair``); and a tail that is still growing is left alone all the same, since cutting
    a line as another process writes it would lose that line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        size = path.stat().st_size
        time.sleep(TORN_RECHECK_S)
        if path.stat().st_size != size:
            return
        data = path.read_bytes()
        handle.truncate(data.rfind(b"\n") + 1)


class RunRecords:
    """The two logs of one run (their files are named by :class:`RunDir`).

    ``repair``: cut a torn last line first — for the runner before it starts any worker,
    or a batch's only worker. Readers (the UI's progress, scoring ahead, the results) and
    data-parallel workers never do: another process may be writing."""

    def __init__(self, samples_path: Path, models_path: Path, repair: bool = False) -> None:
        if repair:
            for path in (samples_path, models_path):
                repair_tail(path)
        self.samples = JsonlLog(samples_path)
        self.models = JsonlLog(models_path)

    def add_samples(self, records: Iterable[SampleRecord]) -> None:
        """Append ``records`` together (a batch's: one write, one flush)."""
        self.samples.extend(asdict(r) for r in records)

    def add_sample(self, record: SampleRecord) -> None:
        self.add_samples([record])

    def add_model(self, record: ModelRecord) -> None:
        self.models.append(asdict(record))

    def sample_rows(self) -> list[dict[str, Any]]:
        """Per (model, id), the first record wins (duplicates can only come from a
        crash between a write and its fsync being acknowledged; they are dropped)."""
        seen: set[tuple[str, str]] = set()
        rows = []
        for row in read_jsonl(self.samples.path):
            key = (row["model"], row["id"])
            if key not in seen:
                seen.add(key)
                rows.append(row)
        return rows

    def model_rows(self) -> list[dict[str, Any]]:
        """Every model turn as it ended, or as far as it got (:meth:`turns`)."""
        return self.turns()

    def turns(self, alive: bool = True) -> list[dict[str, Any]]:
        """One row per worker turn, in the order turns began: the last line of each
        (checkpoints while it ran, then its ending). A turn whose last line says ``running``
        is going on, or was killed; with ``alive=False`` (the run is not running) it reads
        ``killed``. Lines written before turns were named are each their own turn."""
        last: dict[str, dict[str, Any]] = {}
        for index, row in enumerate(read_jsonl(self.models.path)):
            last[row.get("turn") or f"#{index}"] = row
        rows = list(last.values())
        if not alive:
            rows = [{**r, "status": "killed"} if r["status"] == "running" else r for r in rows]
        return rows

    def done(self, model: str) -> set[str]:
        return {row["id"] for row in self.sample_rows() if row["model"] == model}

    def failed_models(self) -> set[str]:
        """Models whose every turn failed (could not load): done, their failure recorded,
        not run again. A data-parallel worker that could not load a model the others ran
        does not make it one: what it had taken is still to do."""
        statuses: dict[str, set[str]] = {}
        for row in self.turns():
            statuses.setdefault(row["model"], set()).add(row["status"])
        return {model for model, seen in statuses.items() if seen == {"failed"}}

    def last_model_status(self) -> dict[str, dict[str, Any]]:
        status: dict[str, dict[str, Any]] = {}
        for row in self.model_rows():
            status[row["model"]] = row
        return status
