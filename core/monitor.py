"""A bounded history of the machine's state, sampled on a background thread.

Keeping the sampler in one long-lived object (not in the page) means the
history survives page switches and costs one sampling thread whatever the
number of open tabs. Evaluation workers and the workbench's own process are
measured apart from the system. Every sample gets a sequence number, so a
browser that already holds samples up to ``n`` is sent only the newer ones
(:meth:`Sampler.since`), as compact columns (:func:`columns`).
"""

from __future__ import annotations

from core.memory_sample import take_sample
from core.system import GB, read_gpus

import os
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

WORKER_MARK = "core.evaluation"
WORKER_SCAN_EVERY = 5  # samples between two scans of the process table for new workers


@dataclass(frozen=True)
class MonitorSample:
    time: float
    cpu_pct: float
    per_core_pct: list[float]
    ram_pct: float
    ram_used_gb: float
    swap_pct: float
    swap_used_gb: float
    app_cpu_pct: float
    app_rss_gb: float
    workers_cpu_pct: float
    workers_rss_gb: float
    workers: int
    gpus: list[dict[str, Any]] = field(default_factory=list)


class _ProcCpu:
    """CPU % of a set of processes between two calls (psutil keeps per-process state)."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def measure(self, pids: list[int]) -> tuple[float, float]:
        cpu, rss = 0.0, 0
        alive: dict[int, psutil.Process] = {}
        for pid in pids:
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = psutil.Process(pid)
                    proc.cpu_percent(None)  # first call primes the counter
                else:
                    cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss
                alive[pid] = proc
            except psutil.Error:
                continue
        self._procs = alive
        return cpu, rss / GB


def worker_pids() -> list[int]:
    """Processes of running evaluations (the runner and its batch workers)."""
    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if any(WORKER_MARK in part for part in cmdline) and proc.info["pid"] != os.getpid():
            pids.append(proc.info["pid"])
    return pids


class Sampler:
    """Samples every ``interval`` seconds into a ring buffer of ``maxlen`` samples."""

    def __init__(self, interval: float = 1.0, maxlen: int = 900) -> None:
        self.interval = interval
        self.history: deque[MonitorSample] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._app = _ProcCpu()
        self._workers = _ProcCpu()
        self._thread: threading.Thread | None = None
        self._count = 0  # samples taken so far: the newest one's sequence number
        self._worker_pids: list[int] = []
        psutil.cpu_percent(None, percpu=True)

    def start(self) -> Sampler:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="ert-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def sample(self) -> MonitorSample:
        """The shared memory reading (as the guard's), plus CPU and per-process figures."""
        per_core = psutil.cpu_percent(None, percpu=True)
        gpus = read_gpus()
        memory = take_sample(gpus=gpus)
        app_cpu, app_rss = self._app.measure([os.getpid()])  # the app alone, not its workers
        if self._count % WORKER_SCAN_EVERY == 0:  # reading every command line is most of
            self._worker_pids = worker_pids()     # a sample's cost; workers come and go slowly
        pids = [p for p in self._worker_pids if psutil.pid_exists(p)]
        workers_cpu, workers_rss = self._workers.measure(pids)
        return MonitorSample(
            time=memory.time, cpu_pct=sum(per_core) / max(len(per_core), 1),
            per_core_pct=list(per_core), ram_pct=memory.ram_pct,
            ram_used_gb=memory.ram_used_gb, swap_pct=memory.swap_pct,
            swap_used_gb=memory.swap_used_gb, app_cpu_pct=app_cpu, app_rss_gb=app_rss,
            workers_cpu_pct=workers_cpu, workers_rss_gb=workers_rss, workers=len(pids),
            gpus=[asdict(g) for g in gpus])

    def _loop(self) -> None:
        self._stop.wait(min(self.interval, 0.3))  # a short first window, so a page has data
        while not self._stop.is_set():
            self.add(self.sample())
            self._stop.wait(self.interval)

    def add(self, sample: MonitorSample) -> None:
        with self._lock:
            self.history.append(sample)
            self._count += 1

    def snapshot(self) -> list[MonitorSample]:
        with self._lock:
            return list(self.history)

    def since(self, seq: int) -> tuple[int, list[MonitorSample]]:
        """The newest sequence number and the samples after ``seq`` still held (all of
        them when ``seq`` is older than the history, or unknown: ``-1``)."""
        with self._lock:
            newer = self._count - max(seq, 0) if seq >= 0 else len(self.history)
            newer = min(max(newer, 0), len(self.history))
            return self._count, list(self.history)[len(self.history) - newer:]


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def columns(samples: list[MonitorSample]) -> dict[str, Any]:
    """Samples as columns of one-decimal numbers: what the browser appends to its charts.

    Times are Unix seconds; GPU columns are keyed by the GPU's index (``None`` where a
    sample lacks that GPU).
    """
    cores = max((len(s.per_core_pct) for s in samples), default=0)
    gpu_ids = sorted({g["index"] for s in samples for g in s.gpus})

    def gpu(sample: MonitorSample, index: int, key: str) -> float | None:
        found = next((g for g in sample.gpus if g["index"] == index), None)
        if found is None or found.get(key) is None:
            return None
        if key == "memory_used_gb":
            return _r(100 * found[key] / max(found["memory_total_gb"], 1e-9))
        return _r(found[key])

    return {
        "time": [round(s.time, 2) for s in samples],
        "cpu": [_r(s.cpu_pct) for s in samples],
        "cores": [[_r(s.per_core_pct[i]) if i < len(s.per_core_pct) else None for s in samples]
                  for i in range(cores)],
        "ram": [_r(s.ram_pct) for s in samples], "swap": [_r(s.swap_pct) for s in samples],
        "app_cpu": [_r(s.app_cpu_pct) for s in samples],
        "workers_cpu": [_r(s.workers_cpu_pct) for s in samples],
        "app_rss": [round(s.app_rss_gb, 3) for s in samples],
        "workers_rss": [round(s.workers_rss_gb, 3) for s in samples],
        "gpus": {str(i): {"util": [gpu(s, i, "utilization_pct") for s in samples],
                          "mem": [gpu(s, i, "memory_used_gb") for s in samples]}
                 for i in gpu_ids},
    }


def latest(sample: MonitorSample, threshold: float) -> dict[str, Any]:
    """The newest sample as the figures the tiles show, with its threshold warnings."""
    return {
        "cpu": f"{sample.cpu_pct:.0f}%", "ram": f"{sample.ram_pct:.0f}%",
        "ram_detail": f"{sample.ram_used_gb:.1f} GB used",
        "swap": f"{sample.swap_pct:.0f}%", "swap_detail": f"{sample.swap_used_gb:.1f} GB used",
        "app": f"{sample.app_cpu_pct:.0f}% CPU", "app_detail": f"{sample.app_rss_gb:.2f} GB",
        "workers": str(sample.workers),
        "workers_detail": f"{sample.workers_cpu_pct:.0f}% CPU · {sample.workers_rss_gb:.2f} GB",
        "gpus": [{"index": g["index"], "label": (
            f"GPU{g['index']} {g['name']} · {g['memory_used_gb']:.1f}/{g['memory_total_gb']:.1f} GB"
            f" · {g.get('utilization_pct') if g.get('utilization_pct') is not None else '—'} %"
            f" · {g.get('temperature_c') or '—'} °C · {g.get('power_w') or '—'} W")}
            for g in sample.gpus],
        "warnings": over_threshold(sample, threshold),
    }


def over_threshold(sample: MonitorSample, threshold: float) -> list[str]:
    """Human warnings for the values at or past ``threshold`` percent."""
    warnings = []
    if sample.cpu_pct >= threshold:
        warnings.append(f"CPU at {sample.cpu_pct:.0f}%")
    if sample.ram_pct >= threshold:
        warnings.append(f"RAM at {sample.ram_pct:.0f}%")
    if sample.swap_pct >= threshold:
        warnings.append(f"swap at {sample.swap_pct:.0f}%")
    for gpu in sample.gpus:
        used = 100 * gpu["memory_used_gb"] / max(gpu["memory_total_gb"], 1e-9)
        if used >= threshold:
            warnings.append(f"GPU{gpu['index']} memory at {used:.0f}%")
    return warnings

