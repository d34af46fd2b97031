"""The run folder: the one place that knows its file names and reads and writes them.

Everything a run leaves on disk lives in ``<runs dir>/<run id>/``: its config,
plan and manifest, the two append-only logs, the live status, the cancel flag,
the runner's lock, worker logs, memory statistics and the consolidated
results. The runner, the workers, the results writer, the Compare page and the
CLI all go through :class:`RunDir`, so a file is renamed in one place and a
resumed run, a copied run and a run from another machine read the same way.
"""

from __future__ import annotations

from core import paths
from core.evaluation.claims import can_claim
from core.evaluation.config import RunConfig
from core.evaluation.planner import Plan
from core.evaluation.records import RunRecords
from core.evaluation.summary import ModelSummary
from core.files import write_atomic

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PLAN_FILE = "plan.json"
CONFIG_FILE = "run_config.json"
MANIFEST_FILE = "run_manifest.json"  # dataset, machine, versions, config, plan, normalizer
SAMPLES_FILE = "samples.jsonl"
MODELS_FILE = "models.jsonl"
STATUS_FILE = "status.json"
CANCEL_FILE = "CANCEL"
LOCK_FILE = "runner.lock"
RUNNER_LOG = "runner.log"
CLUSTER_FILE = "cluster.json"  # a Ray run's nodes, refreshed while its tasks run
CLAIMS_DIR = "claims"  # data-parallel workers' shares, one folder per dispatch of a batch
# Consolidated outputs, rewritten with a new time stamp whenever a run is (re)scored.
CONSOLIDATED, DETAILED, MEMORY, CHART = ("consolidated_results", "consolidated_detailed",
                                         "memory_stats", "comparison")
# Their spreadsheet copies (one row per model / per sample), replaced with each scoring.
RESULTS_CSV, SAMPLES_CSV = "results.csv", "samples.csv"
# A run with robustness conditions (core.conditions): WER against severity per condition,
# and a row per model and condition for a spreadsheet.
CONDITIONS_CHART, CONDITIONS_CSV = "conditions", "conditions.csv"


def stamp() -> str:
    return time.strftime("%Y%m%d_%H%M%S")


class RunDir:
    """One run's folder (it may not exist yet)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def exists(self) -> bool:
        """Whether this is an ERT run (it has a plan)."""
        return (self.path / PLAN_FILE).exists()

    # -- settings, plan, manifest -----------------------------------------
    def write_config(self, config: RunConfig) -> None:
        self._write_json(CONFIG_FILE, config.to_dict())

    def read_config(self) -> RunConfig:
        try:
            return RunConfig.from_dict(self._read_json(CONFIG_FILE))
        except (OSError, ValueError, TypeError) as exc:
            raise FileNotFoundError(f"no readable run in {self.path}: {exc}") from exc

    def write_plan(self, plan: Plan) -> None:
        self._write_json(PLAN_FILE, plan.to_dict())

    def read_plan(self) -> Plan:
        return Plan.from_dict(self._read_json(PLAN_FILE))

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        return self._write_json(MANIFEST_FILE, manifest)

    def read_manifest(self) -> dict[str, Any]:
        return self._read_json(MANIFEST_FILE)

    # -- logs ----------------------------------------------------------------
    def records(self, repair: bool = False) -> RunRecords:
        """The run's logs; ``repair`` only for their sole writer (:class:`RunRecords`)."""
        return RunRecords(self.path / SAMPLES_FILE, self.path / MODELS_FILE, repair)

    def unfinished(self, batch: str) -> list[str]:
        """Why models of ``batch`` still lack samples once its data-parallel workers have
        ended well: a worker that could not load a model the others ran, or was stopped by
        the memory guard, leaves what it had taken (a line per such turn; none when nothing
        is missing). Models that failed everywhere are done."""
        records = self.records()
        done_failing = records.failed_models()
        models = [m for m in self.read_plan().batch(batch).models if m not in done_failing]
        turns = [row for row in records.model_rows()
                 if row["model"] in models and row["status"] not in ("ok", "cancelled")]
        if not turns:
            return []
        ids = set(self.read_manifest()["sample_ids"])
        rows = records.sample_rows()
        lacking = {m for m in models if ids - {r["id"] for r in rows if r["model"] == m}}
        return [f"{row['model']} on {row.get('device') or 'its device'} ({row.get('shard')}): "
                f"{row['status']}" + (f", {row['error']}" if row.get("error") else "")
                for row in turns if row["model"] in lacking]

    @property
    def has_records(self) -> bool:
        return (self.path / SAMPLES_FILE).exists()

    def worker_log(self, batch: str, shard: int | None = None) -> Path:
        """A worker's log; data-parallel workers (``shard`` = their index) each have one."""
        return self.path / (f"worker_{batch}.log" if shard is None
                            else f"worker_{batch}_shard{shard + 1}.log")

    def new_claims(self, batch: str) -> Path | None:
        """A fresh folder where one dispatch of ``batch``'s data-parallel workers share its
        samples (:mod:`core.evaluation.claims`); the batch's earlier ones are removed. None
        where the filesystem cannot hold claims: the workers then take dealt shares."""
        root = self.path / CLAIMS_DIR / batch
        shutil.rmtree(root, ignore_errors=True)
        folder = root / uuid.uuid4().hex[:12]
        return folder if can_claim(folder) else None

    def drop_claims(self) -> None:
        """Remove every dispatch's claims (the run's batches are over)."""
        shutil.rmtree(self.path / CLAIMS_DIR, ignore_errors=True)

    @property
    def runner_log(self) -> Path:
        return self.path / RUNNER_LOG

    def memory_stats(self, batch: str, shard: int | None = None) -> Path:
        """One worker's memory statistics (the consolidated file takes a time stamp)."""
        return self.path / (f"{MEMORY}_{batch}.json" if shard is None
                            else f"{MEMORY}_{batch}_shard{shard + 1}.json")

    def batch_memory_stats(self) -> dict[str, Any]:
        """Every worker's memory statistics by batch name."""
        found = {}
        for path in sorted(self.path.glob(f"{MEMORY}_*.json")):
            name = path.stem.removeprefix(f"{MEMORY}_")
            if not name[:1].isdigit():  # a consolidated file's time stamp
                found[name] = json.loads(path.read_text())
        return found

    # -- live status and cancel --------------------------------------------
    def status_writer(self, worker: int | None = None, **fields: Any) -> StatusWriter:
        """The live status; data-parallel worker ``worker`` writes its own
        (``status_shardN.json``)."""
        name = STATUS_FILE if worker is None else f"status_shard{worker + 1}.json"
        return StatusWriter(self.path / name, **fields)

    def read_status(self) -> dict[str, Any]:
        """The live status; with data-parallel workers, the first one's, and all of them
        under ``"shards"`` (device, model, samples done) for per-device progress."""
        shards = []
        for path in sorted(self.path.glob("status_shard*.json"),
                           key=lambda p: int(p.stem.removeprefix("status_shard") or 0)):
            try:
                shards.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        try:
            status = json.loads((self.path / STATUS_FILE).read_text())
        except (OSError, ValueError):
            status = dict(shards[0]) if shards else {}
        if shards:
            status["shards"] = shards
        return status

    def write_cluster(self, nodes: list[dict[str, Any]]) -> None:
        self._write_json(CLUSTER_FILE, {"time": time.time(), "nodes": nodes})

    def read_cluster(self) -> dict[str, Any]:
        """``{"time", "nodes"}`` of a Ray run, or ``{}``."""
        try:
            return self._read_json(CLUSTER_FILE)
        except (OSError, ValueError):
            return {}

    def cancel_requested(self) -> bool:
        return (self.path / CANCEL_FILE).exists()

    def request_cancel(self) -> None:
        """Every worker stops after its current step (the UI's Cancel, SIGTERM)."""
        (self.path / CANCEL_FILE).touch()

    def clear_cancel(self) -> None:
        (self.path / CANCEL_FILE).unlink(missing_ok=True)

    # -- the runner's lock ---------------------------------------------------
    def lock_pid(self) -> int | None:
        try:
            return int((self.path / LOCK_FILE).read_text().strip())
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        """Whether a live runner holds this run (a lock left by a killed runner does not)."""
        pid = self.lock_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError, OSError):
            return False
        return True

    def acquire(self) -> int | None:
        """Take the lock for this process; returns the pid of a live other holder instead."""
        pid = self.lock_pid()
        if pid is not None and pid != os.getpid() and self.is_running():
            return pid
        (self.path / LOCK_FILE).write_text(str(os.getpid()))
        return None

    def release(self) -> None:
        (self.path / LOCK_FILE).unlink(missing_ok=True)

    # -- consolidated results --------------------------------------------------
    def result_file(self, kind: str, when: str, suffix: str = ".json") -> Path:
        return self.path / f"{kind}_{when}{suffix}"

    def batch_result_file(self, batch: str, when: str) -> Path:
        return self.path / f"batch_{batch}_results_{when}.json"

    def latest(self, kind: str) -> Path | None:
        """The newest ``<kind>_<ts>.json`` (results are rewritten on resume and re-score)."""
        found = sorted(p for p in self.path.glob(f"{kind}_*.json")
                       if p.stem.removeprefix(f"{kind}_")[:1].isdigit())
        return found[-1] if found else None

    def chart(self) -> Path | None:
        """The newest results chart (PNG)."""
        found = sorted(self.path.glob(f"{CHART}_*.png"))
        return found[-1] if found else None

    def read_consolidated(self) -> dict[str, Any] | None:
        path = self.latest(CONSOLIDATED)
        if path is None:
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def read_summaries(self) -> dict[str, ModelSummary]:
        data = self.read_consolidated() or {}
        return {m: ModelSummary.from_dict(s) for m, s in (data.get("models") or {}).items()}

    def read_detailed(self) -> list[dict[str, Any]]:
        path = self.latest(DETAILED)
        if path is None:
            return []
        data = json.loads(path.read_text())
        return data["samples"] if isinstance(data, dict) else data  # a list before issue 9

    # -- helpers ---------------------------------------------------------------
    def write_json(self, path: Path, data: Any) -> Path:
        """Replace ``path`` in one rename: a crash mid-write leaves the old file (a resume
        reads the config, plan and manifest), never half a new one."""
        write_atomic(path, readable_json(data))
        return path

    def _write_json(self, name: str, data: Any) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.write_json(self.path / name, data)

    def _read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())


LONG_LIST = 16  # a list longer than this is written an item a line


def readable_json(data: Any, indent: str = "") -> str:
    """``json.dumps(data, indent=2)``, except that a long list is written an item a line,
    each item compact (a detailed result file: one sample a line). The same JSON; Python's
    indenting encoder is pure Python, and a run of 15,360 samples spent 1.5 s of its end
    in it; compact items go through the C encoder."""
    inner = indent + "  "
    if isinstance(data, dict) and data and all(isinstance(k, str) for k in data):
        fields = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {readable_json(v, inner)}"
                  for k, v in data.items()]
        return "{\n" + ",\n".join(fields) + "\n" + indent + "}"
    if isinstance(data, list | tuple) and len(data) > LONG_LIST:
        items = [inner + json.dumps(item, ensure_ascii=False, default=str) for item in data]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    return json.dumps(data, indent=2, ensure_ascii=False, default=str).replace(
        "\n", "\n" + indent)


class StatusWriter:
    """Rewrites ``status.json`` atomically after every step; the CLI and the UI read it."""

    def __init__(self, path: Path, **fields: Any) -> None:
        self.path = path
        self.fields: dict[str, Any] = {"pid": os.getpid(), **fields}

    def update(self, **fields: Any) -> None:
        self.fields.update(fields, updated=time.time())
        write_atomic(self.path, json.dumps(self.fields))


def scored_rows(path: Path) -> list[dict[str, Any]] | None:
    """A run folder's sample records (the first per model and sample) for
    :func:`core.scoring.read_predictions`; None where the folder holds none."""
    run = RunDir(path)
    return run.records().sample_rows() if run.has_records else None


def run_baseline(path: Path) -> str | None:
    """The baseline a run folder was run with (:func:`core.scoring.default_baseline`); None
    where it names none or holds no readable run."""
    try:
        return RunDir(path).read_config().baseline
    except FileNotFoundError:
        return None


def run_dirs(root: str | Path | None = None) -> Iterator[RunDir]:
    """The runs under ``root`` (default :func:`core.paths.runs_dir`), newest first."""
    root = Path(root) if root is not None else paths.runs_dir()
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir(), reverse=True):
        run = RunDir(folder)
        if folder.is_dir() and run.exists:
            yield run


def find_run(run_id: str, root: str | Path | None = None) -> RunDir | None:
    """A run by folder path or by id under ``root``."""
    for candidate in (RunDir(run_id), RunDir(Path(root or paths.runs_dir()) / run_id)):
        if candidate.exists:
            return candidate
    return None
