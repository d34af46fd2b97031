"""The monitor's sampler (core.monitor): sane readings, the app and workers apart, a bounded
history on a background thread, threshold warnings."""

from __future__ import annotations

from core.monitor import Sampler, over_threshold, worker_pids

import dataclasses
import os
import subprocess
import sys
import threading
import time

import psutil
import pytest

GB = 1024**3


def _wait_for(predicate, timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.fixture
def fake_worker():
    """A busy process whose command line marks it as an evaluation worker."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass",
                             "core.evaluation.worker", "test-run", "batch"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_sample_holds_sane_machine_figures():
    sample = Sampler().sample()
    assert abs(sample.time - time.time()) < 5
    assert len(sample.per_core_pct) == psutil.cpu_count()
    assert all(0.0 <= pct <= 100.0 for pct in sample.per_core_pct)
    assert 0.0 <= sample.cpu_pct <= 100.0
    assert sample.cpu_pct == pytest.approx(sum(sample.per_core_pct) / len(sample.per_core_pct))
    vm = psutil.virtual_memory()
    assert 0.0 < sample.ram_pct <= 100.0
    assert 0.0 < sample.ram_used_gb <= vm.total / GB
    assert sample.ram_used_gb == pytest.approx((vm.total - vm.available) / GB, rel=0.2, abs=0.3)
    assert 0.0 <= sample.swap_pct <= 100.0 and sample.swap_used_gb >= 0.0
    assert isinstance(sample.gpus, list)


def test_the_app_is_measured_on_its_own():
    sampler = Sampler()
    first = sampler.sample()  # primes the per-process CPU counter
    rss = psutil.Process().memory_info().rss / GB
    assert first.app_rss_gb == pytest.approx(rss, rel=0.25)
    assert first.app_cpu_pct == 0.0  # nothing to compare against yet
    _busy(0.6)
    busy = sampler.sample()
    assert busy.app_cpu_pct > 20.0, busy.app_cpu_pct


def test_evaluation_workers_are_found_and_measured_apart(fake_worker):
    assert _wait_for(lambda: fake_worker.pid in worker_pids())
    assert os.getpid() not in worker_pids()
    sampler = Sampler()
    sampler.sample()  # primes the worker's CPU counter
    time.sleep(0.6)
    sample = sampler.sample()
    assert sample.workers >= 1
    assert sample.workers_rss_gb > 0.0
    assert sample.workers_cpu_pct > 20.0, sample.workers_cpu_pct
    fake_worker.kill()
    fake_worker.wait()
    assert fake_worker.pid not in worker_pids()


def test_an_ordinary_process_is_not_a_worker():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert _wait_for(lambda: psutil.pid_exists(proc.pid))
        time.sleep(0.1)
        assert proc.pid not in worker_pids()
    finally:
        proc.kill()
        proc.wait()


def test_the_background_history_is_bounded_and_in_time_order():
    sampler = Sampler(interval=0.05, maxlen=4).start()
    try:
        assert _wait_for(lambda: len(sampler.snapshot()) == 4)
        first_full = sampler.snapshot()
        assert _wait_for(lambda: sampler.snapshot()[0].time > first_full[0].time)
        history = sampler.snapshot()
        assert len(history) == 4  # the oldest samples were dropped
        times = [s.time for s in history]
        assert times == sorted(times) and len(set(times)) == 4
        assert time.time() - times[-1] < 5
    finally:
        sampler.stop()


def test_a_snapshot_is_a_copy():
    sampler = Sampler(interval=0.05, maxlen=10).start()
    try:
        assert _wait_for(lambda: len(sampler.snapshot()) >= 2)
        snapshot = sampler.snapshot()
        snapshot.clear()
        assert sampler.snapshot()
    finally:
        sampler.stop()


def test_the_first_sample_comes_early_even_with_a_long_interval():
    sampler = Sampler(interval=30.0).start()
    try:
        assert _wait_for(lambda: len(sampler.snapshot()) == 1, timeout=3.0)
    finally:
        sampler.stop()


def test_stop_ends_sampling_and_start_twice_runs_one_thread():
    def sampler_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "ert-monitor" and t.is_alive()}

    before = sampler_threads()
    sampler = Sampler(interval=0.05, maxlen=1000)
    assert sampler.start() is sampler
    sampler.start()
    mine = sampler_threads() - before
    assert len(mine) == 1
    assert _wait_for(lambda: len(sampler.snapshot()) >= 2)
    sampler.stop()
    (thread,) = mine
    thread.join(timeout=5)
    assert not thread.is_alive()
    count = len(sampler.snapshot())
    time.sleep(0.3)
    assert len(sampler.snapshot()) == count


# --- thresholds -----------------------------------------------------------------------------


def _quiet(**changes):
    """A real sample with the given figures (all others well under any threshold)."""
    sample = Sampler().sample()
    values = dict(cpu_pct=10.0, ram_pct=20.0, swap_pct=0.0, gpus=[])
    values.update(changes)
    return dataclasses.replace(sample, **values)


def _gpu(index: int, used: float, total: float) -> dict:
    return {"index": index, "name": "Test GPU", "memory_total_gb": total,
            "memory_used_gb": used, "utilization_pct": 50.0, "temperature_c": 60.0,
            "power_w": 100.0}


def test_nothing_under_the_threshold_is_a_warning():
    assert over_threshold(_quiet(gpus=[_gpu(0, 1.0, 80.0)]), 85) == []


def test_each_value_at_or_past_the_threshold_is_named():
    sample = _quiet(cpu_pct=85.0, ram_pct=91.4, swap_pct=99.0,
                    gpus=[_gpu(0, 10.0, 80.0), _gpu(1, 72.0, 80.0)])
    assert over_threshold(sample, 85) == ["CPU at 85%", "RAM at 91%", "swap at 99%",
                                          "GPU1 memory at 90%"]


def test_the_threshold_moves_the_warnings():
    sample = _quiet(cpu_pct=50.0, ram_pct=60.0)
    assert over_threshold(sample, 85) == []
    assert over_threshold(sample, 55) == ["RAM at 60%"]
    assert over_threshold(sample, 50) == ["CPU at 50%", "RAM at 60%"]


def test_a_gpu_reporting_no_memory_does_not_crash_the_warnings():
    assert over_threshold(_quiet(gpus=[_gpu(0, 0.0, 0.0)]), 85) == []


def _fake(t: float, cpu: float, gpus: list | None = None):
    from core.monitor import MonitorSample

    return MonitorSample(time=t, cpu_pct=cpu, per_core_pct=[cpu, cpu / 2], ram_pct=40.0,
                         ram_used_gb=3.2, swap_pct=0.0, swap_used_gb=0.0, app_cpu_pct=1.0,
                         app_rss_gb=0.3, workers_cpu_pct=0.0, workers_rss_gb=0.0, workers=0,
                         gpus=gpus or [])


def test_since_returns_only_the_samples_a_browser_lacks():
    sampler = Sampler(interval=1.0, maxlen=3)
    for i in range(2):
        sampler.add(_fake(100.0 + i, 10.0 * i))
    assert [s.time for s in sampler.since(-1)[1]] == [100.0, 101.0]
    seq, newer = sampler.since(2)
    assert (seq, newer) == (2, [])
    sampler.add(_fake(102.0, 5.0))
    sampler.add(_fake(103.0, 6.0))
    assert [s.time for s in sampler.since(2)[1]] == [102.0, 103.0]
    assert sampler.since(0)[1][0].time == 101.0  # older than the history: all it holds


def test_columns_round_and_key_gpus_by_index():
    from core.monitor import columns

    gpu = {"index": 1, "name": "H100", "memory_used_gb": 20.0, "memory_total_gb": 80.0,
           "utilization_pct": 93.456, "temperature_c": 61.0, "power_w": 350.0}
    cols = columns([_fake(1.0, 12.345), _fake(2.0, 50.0, [gpu])])
    assert cols["cpu"] == [12.3, 50.0] and cols["cores"][1] == [6.2, 25.0]
    assert cols["gpus"] == {"1": {"util": [None, 93.5], "mem": [None, 25.0]}}


def test_the_chart_payload_sends_new_samples_and_resets_a_browser_that_fell_behind():
    from ui.monitor_chart import payload

    sampler = Sampler(interval=1.0, maxlen=4)
    for i in range(3):
        sampler.add(_fake(100.0 + i, 10.0))
    first = payload(sampler, -1, 1.0, 60.0, 85, 0)
    assert first["reset"] and first["seq"] == 3 and len(first["columns"]["time"]) == 3
    assert first["latest"]["cpu"] == "10%" and first["latest"]["warnings"] == []
    idle = payload(sampler, 3, 1.0, 60.0, 85, 1)
    assert idle["columns"] is None and not idle["reset"] and idle["latest"]["cpu"] == "10%"
    sampler.add(_fake(103.0, 90.0))
    new = payload(sampler, 3, 1.0, 60.0, 85, 2)
    assert new["columns"]["time"] == [103.0] and new["latest"]["warnings"] == ["CPU at 90%"]
    for i in range(5):
        sampler.add(_fake(104.0 + i, 10.0))
    behind = payload(sampler, 3, 1.0, 60.0, 85, 3)  # its next sample was dropped meanwhile
    assert behind["reset"] and len(behind["columns"]["time"]) == 4


def test_a_worker_row_shows_its_host_load_and_blanks_before_its_first_step():
    from core.evaluation.summary import worker_row

    row = worker_row({"shard": "1/2", "node": "gpu-07", "device": "cuda:1", "model": "whisper:x",
                      "done": 40, "total": 100, "host_load": {
                          "cpu_pct": 35.0, "ram_pct": 61.5, "gpu_used_gb": [21.04, 0.5],
                          "gpu_total_gb": [80.0, 80.0]}})
    assert row == {"worker": "1/2", "host": "gpu-07", "device": "cuda:1", "model": "whisper:x",
                   "samples": "40 of 100", "batch size": None, "samples/s": None,
                   "host CPU %": 35.0, "host RAM %": 61.5,
                   "GPU GB used/total": "21.0/80, 0.5/80"}
    fresh = worker_row({"shard": "2/2", "device": "cpu"})
    assert fresh["host RAM %"] is None and fresh["GPU GB used/total"] is None
    assert fresh["samples"] == "0 of —"
