"""The runner that the Evaluation page starts in the background is reaped when it ends.

``runner.launch`` (the page's Start) starts ``python -m core.evaluation.runner RUN_DIR`` in its
own session and returns at once. A child that its parent never waits for stays a ``<defunct>``
zombie under the Streamlit server, and a zombie still answers ``os.kill(pid, 0)``, so the
stale lock of a killed runner would read as "running" for good.
"""

from __future__ import annotations

from core.evaluation import runner
from core.evaluation.config import RunConfig

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow  # a real run of the bundled faster-whisper tiny.en


@pytest.fixture(scope="module")
def one_clip(tmp_path_factory) -> Path:
    from core.demo_data import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("spawn") / "demo", langs=("en",), count=1)


def _config(manifest: Path, out: Path) -> RunConfig:
    return RunConfig(dataset=str(manifest), out_dir=str(out), use_cache=False,
                     models=["faster-whisper:tiny.en"])


def _children() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


def _status(proc: psutil.Process) -> str | None:
    try:
        return proc.status()
    except psutil.NoSuchProcess:  # gone, reaped
        return None


def _zombies() -> list[psutil.Process]:
    return [p for p in _children() if _status(p) == psutil.STATUS_ZOMBIE]


def _exited(pid: int) -> bool:
    """Nothing of ``pid`` runs any more: gone, or a zombie waiting to be reaped."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def _assert_no_zombies(timeout: float = 5) -> None:
    """The parent reaps its children at once; unfixed, a <defunct> entry stays until it exits."""
    deadline = time.monotonic() + timeout
    while _zombies() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _zombies(), f"<defunct> children never reaped: {_zombies()}"


def _runner_pid(run_dir: Path) -> int:
    """The spawned runner: our child, running ``core.evaluation.runner RUN_DIR``."""
    for child in psutil.Process().children():
        try:
            if str(run_dir) in child.cmdline():
                return child.pid
        except psutil.NoSuchProcess:
            continue
    raise AssertionError(f"no runner child for {run_dir}")


def test_finished_runner_is_reaped(tmp_path, one_clip):
    assert not _zombies(), "a zombie child before the test: another test left one"
    run_dir = runner.launch(_config(one_clip, tmp_path / "runs"))
    pid = _runner_pid(run_dir)
    assert runner.is_running(run_dir)

    _wait(lambda: not runner.is_running(run_dir), 600, "the run to finish")
    assert list(run_dir.glob("consolidated_results_*.json")), \
        (run_dir / "runner.log").read_text(errors="replace")[-2000:]
    # The runner releases its lock just before it exits: wait until nothing of it runs.
    _wait(lambda: _exited(pid), 60, "the runner to exit")
    _assert_no_zombies()
    assert not psutil.pid_exists(pid)


def test_killed_runner_is_reaped_and_not_running(tmp_path, one_clip):
    run_dir = runner.launch(_config(one_clip, tmp_path / "runs"))
    pid = _runner_pid(run_dir)
    os.killpg(pid, signal.SIGKILL)  # the runner and its worker: its own session and group
    # Its lock file stays behind; once reaped, the pid in it is gone and the run reads stopped.
    _wait(lambda: not runner.is_running(run_dir), 10, "the killed run to read as stopped")
    _assert_no_zombies()
