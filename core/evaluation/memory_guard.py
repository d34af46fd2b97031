"""The memory guard (the seed's ``memory_monitor.py``).

It samples RAM, swap, GPU memory and the watched process tree on a thread
(:func:`core.memory_sample.take_sample`, the reading the monitor page shows).
Past ``threshold_pct`` it warns; past ``critical_pct`` of system RAM, or
when the process tree exceeds ``limit_gb``, it trips, and the evaluation
loop stops the current model cleanly ("stopped: memory") instead of letting
the kernel's OOM killer take the whole run.
"""

from __future__ import annotations

# MemorySample and take_sample are re-exported: the worker imports them from here.
from core.memory_sample import MemorySample, take_sample
from core.system import peak_rss_gb, process_tree_rss_gb, reset_peak_rss

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class GuardConfig:
    threshold_pct: float = 85.0
    critical_pct: float = 95.0
    log_interval_s: float = 30.0
    check_interval_s: float = 0.25
    # Growth of the watched process tree since the current model started, past
    # which that model is stopped. ``None``: only the system thresholds apply.
    limit_gb: float | None = None


class MemoryGuard(threading.Thread):
    """Samples memory until stopped; ``tripped`` is set when the model must stop."""

    def __init__(self, config: GuardConfig | None = None, pid: int | None = None,
                 on_log: Callable[[MemorySample, list[str]], None] | None = None) -> None:
        super().__init__(name="ert-memory-guard", daemon=True)
        self.config = config or GuardConfig()
        self.pid = pid or os.getpid()
        self.on_log = on_log
        self.samples: list[MemorySample] = []
        self.latest: MemorySample | None = None  # the last sample taken, for live status
        self.warnings: list[str] = []
        self.tripped = threading.Event()
        self.reason: str | None = None
        self._sampled_peak_gb = 0.0
        self._high_water = False  # the kernel keeps this process's peak since reset()
        self.peak_gpu_gb = 0.0
        self.baseline_rss_gb = process_tree_rss_gb(self.pid)
        self._generation = 0  # bumped by reset(): a sample taken before it is stale
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    @property
    def peak_rss_gb(self) -> float:
        """The watched tree's peak RSS since the last reset: its highest sample, or this
        process's own peak as the kernel recorded it, if higher: a model's peak can last
        less than the time between two samples (a step on a GPU, a transient buffer)."""
        own = peak_rss_gb() if self._high_water else None
        return max(self._sampled_peak_gb, own or 0.0)

    def check(self, sample: MemorySample) -> list[str]:
        """Apply the thresholds to one sample; trip the guard if it must."""
        cfg = self.config
        self._sampled_peak_gb = max(self._sampled_peak_gb, sample.process_rss_gb)
        self.peak_gpu_gb = max([self.peak_gpu_gb, *sample.gpu_used_gb])
        notes: list[str] = []
        if sample.ram_pct >= cfg.threshold_pct:
            notes.append(f"RAM at {sample.ram_pct:.0f}% (threshold {cfg.threshold_pct:.0f}%)")
        if sample.swap_pct >= cfg.threshold_pct:
            notes.append(f"swap at {sample.swap_pct:.0f}%")
        if sample.ram_pct >= cfg.critical_pct:
            self._trip(f"system RAM at {sample.ram_pct:.0f}% (critical {cfg.critical_pct:.0f}%)")
        grown = sample.process_rss_gb - self.baseline_rss_gb
        if cfg.limit_gb is not None and grown > cfg.limit_gb:
            self._trip(f"the model took {grown:.2f} GB, over its {cfg.limit_gb:.2f} GB limit")
        return notes

    def _trip(self, reason: str) -> None:
        if not self.tripped.is_set():
            self.reason = reason
            self.tripped.set()

    def reset(self, limit_gb: float | None = None) -> None:
        """Re-arm for the next model: new baseline, peaks restart, optional new limit."""
        with self._lock:
            self._generation += 1
            self.tripped.clear()
            self.reason = None
            self._sampled_peak_gb = 0.0
            self.peak_gpu_gb = 0.0
            self.baseline_rss_gb = process_tree_rss_gb(self.pid)
            self._high_water = self.pid == os.getpid() and reset_peak_rss()
            if limit_gb is not None:
                self.config.limit_gb = limit_gb

    def run(self) -> None:
        last_log = 0.0
        while not self._stop_event.is_set():
            generation = self._generation
            sample = take_sample(self.pid)
            self.latest = sample
            with self._lock:
                if generation != self._generation:
                    continue  # taken across a reset: it describes the previous model
                notes = self.check(sample)
            now = time.monotonic()
            if now - last_log >= self.config.log_interval_s or self.tripped.is_set() and \
                    (not self.samples or self.samples[-1].time < sample.time - 1):
                last_log = now
                self.samples.append(sample)
                self.warnings.extend(notes)
                if self.on_log:
                    self.on_log(sample, notes)
            self._stop_event.wait(self.config.check_interval_s)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)

    def stats(self) -> dict:
        """The content of ``memory_stats_<ts>.json``."""
        return {"config": asdict(self.config), "samples": [asdict(s) for s in self.samples],
                "warnings": self.warnings, "tripped": self.reason,
                "peak_ram_pct": max((s.ram_pct for s in self.samples), default=None),
                "peak_process_rss_gb": max((s.process_rss_gb for s in self.samples),
                                           default=None)}

    def write_stats(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.stats(), indent=2))
        return path
