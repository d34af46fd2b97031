"""What the machine has: RAM, swap, CPU cores and each GPU (NVML where present).

Shared by the planner, the memory guard, the monitor page and the run manifest,
so all of them describe the machine the same way. Nothing here fails on a
machine without a GPU or without NVML: the GPU list is simply empty.
"""

from __future__ import annotations

from core.devices import is_cuda

import ctypes
import ctypes.util
import functools
import os
import platform
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

GB = 1024**3
BUDGET_SHARE = 0.8  # of available memory, when no budget is given
# Native bf16 arithmetic: AVX-512 BF16 (Cooper Lake, Zen 4 and later), AMX (Sapphire Rapids)
# or Arm's BF16 extension (Graviton 3, Neoverse V1 and later).
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
_NVML_LOCK = threading.Lock()
_NVML_STATE: dict[str, Any] = {"tried": False, "ok": False}


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    memory_total_gb: float
    memory_used_gb: float
    utilization_pct: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None

    @property
    def memory_free_gb(self) -> float:
        return max(0.0, self.memory_total_gb - self.memory_used_gb)


@dataclass(frozen=True)
class MachineInfo:
    cpu_cores: int
    cpu_model: str
    ram_total_gb: float
    ram_available_gb: float
    swap_total_gb: float
    swap_used_gb: float
    gpus: list[GpuInfo] = field(default_factory=list)

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _nvml() -> Any | None:
    """The pynvml module once initialised, or ``None`` where there is no NVIDIA driver."""
    with _NVML_LOCK:
        if not _NVML_STATE["tried"]:
            _NVML_STATE["tried"] = True
            try:
                import pynvml

                pynvml.nvmlInit()
                _NVML_STATE.update(ok=True, mod=pynvml)
            except Exception:  # no library, no driver, no device: all mean "no GPU"
                _NVML_STATE["ok"] = False
        return _NVML_STATE.get("mod") if _NVML_STATE["ok"] else None


def _optional(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:  # a counter this GPU does not expose
        return None


def read_gpus() -> list[GpuInfo]:
    """Every NVIDIA GPU's memory, use, temperature and power; ``[]`` without NVML."""
    nv = _nvml()
    if nv is None:
        return []
    gpus: list[GpuInfo] = []
    for index in range(nv.nvmlDeviceGetCount()):
        handle = nv.nvmlDeviceGetHandleByIndex(index)
        mem = nv.nvmlDeviceGetMemoryInfo(handle)
        name = nv.nvmlDeviceGetName(handle)
        util = _optional(nv.nvmlDeviceGetUtilizationRates, handle)
        temp = _optional(nv.nvmlDeviceGetTemperature, handle, 0)
        power = _optional(nv.nvmlDeviceGetPowerUsage, handle)
        gpus.append(GpuInfo(
            index=index, name=name.decode() if isinstance(name, bytes) else str(name),
            memory_total_gb=mem.total / GB, memory_used_gb=mem.used / GB,
            utilization_pct=float(util.gpu) if util is not None else None,
            temperature_c=float(temp) if temp is not None else None,
            power_w=power / 1000.0 if power is not None else None))
    return gpus


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (read once); empty where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):  # x86, ARM
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether bf16 matrix products beat fp32 here: AMX tiles. With ``avx512_bf16`` alone
    oneDNN's bf16 kernel ran at 0.6× fp32's speed on this project's machine (BENCHMARKS.md,
    issue 12): bf16 then saves memory but costs time."""
    return "amx_bf16" in (cpu_flags() if flags is None else flags)


def cpu_has_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU computes in bf16 natively, so bf16 weights halve memory without the
    slow emulation older CPUs fall back to (``flags`` defaults to :func:`cpu_flags`)."""
    return bool(BF16_FLAGS & (cpu_flags() if flags is None else flags))


def read_machine() -> MachineInfo:
    vm = psutil.virtual_memory()
    swap = psutil.swap_memory()
    return MachineInfo(
        cpu_cores=os.cpu_count() or 1, cpu_model=cpu_model(),
        ram_total_gb=vm.total / GB, ram_available_gb=vm.available / GB,
        swap_total_gb=swap.total / GB, swap_used_gb=swap.used / GB, gpus=read_gpus())


def available_memory_gb(machine: MachineInfo, device: str) -> float:
    """What is free for a model on ``device``: the roomiest GPU's free memory for any CUDA
    device (``cuda``, ``cuda:1``) when the machine reports GPUs, else available RAM."""
    if is_cuda(device) and machine.gpus:
        return max(g.memory_free_gb for g in machine.gpus)
    return machine.ram_available_gb


@functools.cache
def _malloc_trim() -> Any | None:
    """glibc's ``malloc_trim``, or ``None`` where the C library has none (macOS, musl)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Hand what the allocator keeps after a model is freed back to the system.

    glibc keeps freed pages in its arenas, so a model loaded next reuses them without
    growing RSS and measures less than it takes alone; trimming before each model's
    baseline makes its measured peak the same in whatever order models run."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def process_tree_rss_gb(pid: int | None = None) -> float:
    """Resident memory of a process and its children (a worker and its helpers)."""
    try:
        proc = psutil.Process(pid or os.getpid())
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total / GB


def reset_peak_rss() -> bool:
    """Restart the kernel's record of this process's peak RSS (``VmHWM``) from its RSS
    now (Linux 4.0 and later); False where it cannot. A sample every 0.25 s misses a peak
    that lasts less; this record does not."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def peak_rss_gb() -> float | None:
    """This process's peak RSS since it started or since :func:`reset_peak_rss`; None
    where the kernel does not say."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / GB
    except (OSError, ValueError, IndexError):
        pass
    return None
