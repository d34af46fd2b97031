"""core.parallel: work spread over forked processes only where that is safe and worth it."""

from __future__ import annotations

from core import parallel

import subprocess
import sys
import threading

from tests.conftest import REPO


def _lengths(items) -> int:
    return len(items)


def test_chunks_keep_order_and_cover_everything() -> None:
    items = list(range(10))
    parts = parallel.chunks(items, 3)
    assert [x for part in parts for x in part] == items and len(parts) == 3
    assert parallel.chunks([], 4) == []


def test_a_fresh_interpreter_is_single_threaded() -> None:
    out = subprocess.run([sys.executable, "-c", "from core import parallel; "
                          "print(parallel.single_threaded())"], cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == "True"


def test_work_is_spread_when_single_threaded_and_large_enough(monkeypatch) -> None:
    monkeypatch.setattr(parallel, "usable_cores", lambda: 3)
    monkeypatch.setattr(parallel, "single_threaded", lambda: True)  # others leave threads here
    assert parallel.fork_map(_lengths, list(range(90)), 30) == [30, 30, 30]
    assert parallel.fork_map(_lengths, list(range(50)), 30) == [50]  # not worth a fork


def test_a_process_with_threads_never_forks(monkeypatch) -> None:
    monkeypatch.setattr(parallel, "usable_cores", lambda: 3)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not parallel.single_threaded()
        assert parallel.fork_map(_lengths, list(range(90)), 30) == [90]
    finally:
        stop.set()
        thread.join()


def test_the_thread_cap_bounds_the_processes(monkeypatch) -> None:
    monkeypatch.setenv("ERT_THREADS", "1")
    assert parallel.usable_cores() == 1
    assert parallel.fork_map(_lengths, list(range(90)), 30) == [90]
