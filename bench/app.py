"""Idle CPU of the running app: ``streamlit run ERT.py`` left alone for 30 s (goal < 1 % of a core).

``python -m bench app`` — the repo's ``.streamlit/config.toml`` (headless, no
file watcher), a free port on 127.0.0.1; waits for ``/_stcore/health``,
fetches the page once, lets start-up settle, then samples the CPU time of
the whole process tree with psutil every second for ``WINDOW_S`` seconds.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.paths import REPO_ROOT

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

import psutil

from bench.common import save, table, tree_cpu_seconds

WINDOW_S = 30.0
SETTLE_S = 5.0
START_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        response.read()
        return int(response.status)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    port = _free_port()
    streamlit = [sys.executable, "-m", "streamlit", "run", "ERT.py", "--server.port", str(port),
                 "--server.address", "127.0.0.1", "--server.headless", "true"]
    proc = subprocess.Popen(streamlit, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"streamlit exited ({proc.returncode}): {proc.stderr.read()}")
            try:
                if _get(f"{base}/_stcore/health") == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() - started > START_TIMEOUT_S:
                raise SystemExit("streamlit did not answer its health check in time")
            time.sleep(0.25)
        ready_s = time.perf_counter() - started
        page_status = _get(base + "/")
        time.sleep(SETTLE_S)
        root = psutil.Process(proc.pid)
        samples = []
        cpu0, t0 = tree_cpu_seconds(root), time.perf_counter()
        last_cpu, last_t = cpu0, t0
        while (now := time.perf_counter()) - t0 < WINDOW_S:
            time.sleep(1.0)
            cpu, now = tree_cpu_seconds(root), time.perf_counter()
            samples.append((cpu - last_cpu) / (now - last_t))
            last_cpu, last_t = cpu, now
        idle = (last_cpu - cpu0) / (last_t - t0)
        processes = 1 + len(root.children(recursive=True))
        threads = root.num_threads()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    row = {"window s": WINDOW_S, "idle CPU % of a core": 100 * idle,
           "max 1-s sample %": 100 * max(samples), "processes": processes,
           "threads": threads, "ready after s": ready_s, "GET / status": page_status}
    print(table([row], "streamlit run ERT.py, idle after one page fetch (goal < 1 %)"))
    result = {**row, "samples_percent": [100 * s for s in samples], "goal_met": idle < 0.01}
    print(f"saved {save('app', result)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
