"""One reading of memory: RAM, swap, a process tree's RSS and each GPU's memory.

The memory guard trips on these numbers and the monitor page draws them; both
read them here, so "RAM used" means the same thing (total minus available, the
kernel's own estimate of what cannot be reclaimed) wherever ERT shows or acts on it.
"""

from __future__ import annotations

from core.system import GB, GpuInfo, process_tree_rss_gb, read_gpus

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil


@dataclass(frozen=True)
class MemorySample:
    time: float
    ram_pct: float
    ram_used_gb: float
    ram_available_gb: float
    swap_pct: float
    swap_used_gb: float
    process_rss_gb: float  # the watched process and its children
    gpu_used_gb: list[float] = field(default_factory=list)
    gpu_total_gb: list[float] = field(default_factory=list)

    def line(self) -> str:
        """One log line, as the guard writes it."""
        gpu = "".join(f" | GPU{i}: {u:.1f}/{t:.1f} GB" for i, (u, t)
                      in enumerate(zip(self.gpu_used_gb, self.gpu_total_gb, strict=False)))
        stamp = time.strftime("%H:%M:%S", time.localtime(self.time))
        return (f"[{stamp}] RAM {self.ram_pct:5.1f}% ({self.ram_used_gb:.1f} GB used, "
                f"{self.ram_available_gb:.1f} GB free) | swap {self.swap_pct:5.1f}% | "
                f"process {self.process_rss_gb:.2f} GB{gpu}")


def take_sample(pid: int | None = None, *,
                gpus: Sequence[GpuInfo] | None = None) -> MemorySample:
    """Memory now, for process ``pid`` (default: this one) and its children.

    ``gpus``: the GPUs already read by the caller (the monitor keeps their use and
    temperature too), so NVML is asked once per sample; read here when ``None``.
    """
    vm = psutil.virtual_memory()
    swap = psutil.swap_memory()
    gpus = read_gpus() if gpus is None else gpus
    return MemorySample(
        time=time.time(), ram_pct=vm.percent, ram_used_gb=(vm.total - vm.available) / GB,
        ram_available_gb=vm.available / GB, swap_pct=swap.percent, swap_used_gb=swap.used / GB,
        process_rss_gb=process_tree_rss_gb(pid),
        gpu_used_gb=[g.memory_used_gb for g in gpus],
        gpu_total_gb=[g.memory_total_gb for g in gpus])


def host_load(sample: MemorySample | None) -> dict[str, Any]:
    """What a worker reports of its host while it runs (the Monitor page's live table of a
    data-parallel or cluster run): CPU % since the last call, RAM %, each GPU's use."""
    load: dict[str, Any] = {"cpu_pct": psutil.cpu_percent(interval=None)}
    if sample is not None:
        load.update(ram_pct=sample.ram_pct, gpu_used_gb=sample.gpu_used_gb,
                    gpu_total_gb=sample.gpu_total_gb)
    return load
