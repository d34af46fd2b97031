"""The one memory reading that the memory guard and the monitor page share."""

from __future__ import annotations

from core import system
from core.evaluation import memory_guard
from core.memory_sample import MemorySample, take_sample
from core.monitor import Sampler

import os
import subprocess
import sys
import time
from types import SimpleNamespace

import psutil
import pytest

GB = 1024**3


def test_values_are_positive_and_agree_with_psutil() -> None:
    vm_before = psutil.virtual_memory()
    sample = take_sample()
    vm_after = psutil.virtual_memory()
    assert abs(sample.time - time.time()) < 5
    assert 0 < sample.ram_pct <= 100
    used = sorted((vm.total - vm.available) / GB for vm in (vm_before, vm_after))
    assert used[0] - 0.25 <= sample.ram_used_gb <= used[1] + 0.25
    assert 0 < sample.ram_available_gb <= vm_after.total / GB
    assert sample.ram_used_gb + sample.ram_available_gb == pytest.approx(vm_after.total / GB,
                                                                         rel=0.01)
    assert 0 <= sample.swap_pct <= 100 and sample.swap_used_gb >= 0
    own = psutil.Process().memory_info().rss / GB
    assert sample.process_rss_gb >= 0.5 * own > 0


def test_process_rss_counts_the_children() -> None:
    child = subprocess.Popen([sys.executable, "-c",
                              "b = bytearray(200 * 2**20); import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(child.pid).memory_info().rss < 150 * 2**20:
            assert time.monotonic() < deadline, "the child never grew"
            time.sleep(0.05)
        alone = psutil.Process().memory_info().rss / GB
        assert take_sample(os.getpid()).process_rss_gb > alone + 0.14
        assert take_sample(child.pid).process_rss_gb > 0.14
    finally:
        child.kill()
        child.wait()


def test_no_nvml_means_no_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system, "_NVML_STATE", {"tried": True, "ok": False})
    sample = take_sample()
    assert sample.gpu_used_gb == [] and sample.gpu_total_gb == []
    assert "GPU" not in sample.line()


def test_gpu_memory_comes_from_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = SimpleNamespace(
        nvmlDeviceGetCount=lambda: 1, nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(total=80 * GB, used=20 * GB),
        nvmlDeviceGetName=lambda h: b"Fake GPU", nvmlDeviceGetUtilizationRates=lambda h: None,
        nvmlDeviceGetTemperature=lambda h, s: None, nvmlDeviceGetPowerUsage=lambda h: None)
    monkeypatch.setattr(system, "_NVML_STATE", {"tried": True, "ok": True, "mod": fake})
    sample = take_sample()
    assert sample.gpu_used_gb == [20.0] and sample.gpu_total_gb == [80.0]
    assert "GPU0: 20.0/80.0 GB" in sample.line()
    monitor = Sampler().sample()
    assert [g["memory_used_gb"] for g in monitor.gpus] == [20.0]


def test_guard_and_monitor_read_memory_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    vm = SimpleNamespace(total=64 * GB, available=16 * GB, percent=75.0)
    swap = SimpleNamespace(total=8 * GB, used=2 * GB, percent=25.0)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: vm)
    monkeypatch.setattr(psutil, "swap_memory", lambda: swap)
    monkeypatch.setattr(system, "_NVML_STATE", {"tried": True, "ok": False})
    shared = memory_guard.take_sample()
    assert isinstance(shared, MemorySample) and memory_guard.MemorySample is MemorySample
    assert (shared.ram_pct, shared.ram_used_gb, shared.ram_available_gb) == (75.0, 48.0, 16.0)
    assert (shared.swap_pct, shared.swap_used_gb) == (25.0, 2.0)
    monitor = Sampler().sample()
    assert (monitor.ram_pct, monitor.ram_used_gb) == (75.0, 48.0)
    assert (monitor.swap_pct, monitor.swap_used_gb) == (25.0, 2.0)
    assert monitor.gpus == []
