"""A bounded history of the machine's state, sampled on a background thread.

The monitor page redraws from this history every second or so; keeping the
sampler in one long-lived object (not in the page) means the history
survives page switches and costs one sampling thread whatever the number of
open tabs. Evaluation workers and the workbench's own process are measured
apart from the system.
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
        pids = worker_pids()
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
            sample = self.sample()
            with self._lock:
                self.history.append(sample)
            self._stop.wait(self.interval)

    def snapshot(self) -> list[MonitorSample]:
        with self._lock:
            return list(self.history)


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
