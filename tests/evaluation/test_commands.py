"""The evaluation subcommands of ``ert``."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_cli_lists_batches_analyzes_and_monitors(tmp_path, bench):
    def ert(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, text=True,
                              capture_output=True, check=True, timeout=300).stdout

    assert "batch_1_light" in ert("evaluate", "--list-batches")
    out = ert("analyze", "--dataset", str(bench["five"]), "--batches", "batch_1_light")
    assert "strategy" in out and "batch_1_light" in out and "estimated time" in out
    out = ert("monitor", "--duration", "1.2", "--log-interval", "0.5", "--out", str(tmp_path))
    assert "RAM" in out and list(tmp_path.glob("memory_stats_*.json"))
    for command in ("evaluate", "analyze", "monitor", "demo-data"):
        assert "Example" in ert(command, "--help") or "example" in ert(command, "--help")
