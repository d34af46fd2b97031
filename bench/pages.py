"""CPU of the running app with the Monitor page open (1 s refresh) against idle, 30 s each.

``python -m bench pages`` — one ``streamlit run ERT.py`` on 127.0.0.1; its
process tree's CPU time is sampled with psutil (the browser's own CPU is not
counted): first with no page open, then with Debian's Chromium (headless,
Playwright) showing the Monitor page at its default 1 s refresh.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)

import time
from typing import Any

import psutil

from bench.common import save, table, tree_cpu_seconds
from tests.browser import chromium_page, streamlit_server

WINDOW_S = 30.0
SETTLE_S = 5.0


def _server_process(port: str) -> psutil.Process:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if "streamlit" in cmdline and "ERT.py" in cmdline and f"--server.port {port}" in cmdline:
            return proc
    raise RuntimeError("streamlit server process not found")


def _window(proc: psutil.Process) -> float:
    before, started = tree_cpu_seconds(proc), time.perf_counter()
    time.sleep(WINDOW_S)
    return 100 * (tree_cpu_seconds(proc) - before) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    rows = []
    with streamlit_server() as url:
        proc = _server_process(url.rsplit(":", 1)[1])
        time.sleep(SETTLE_S)
        rows.append({"state": "idle, no page open", "CPU % of one core": _window(proc)})
        with chromium_page() as page:
            page.goto(f"{url}/Monitor")
            page.get_by_text("CPU %").first.wait_for(timeout=60_000)
            time.sleep(SETTLE_S)
            rows.append({"state": "Monitor page open, 1 s refresh",
                         "CPU % of one core": _window(proc)})
    print(table(rows, f"app process tree CPU over {WINDOW_S:.0f} s (100 % = one core)"))
    result = {"window_s": WINDOW_S, "rows": rows}
    print(f"saved {save('pages', result)}")
    return result


if __name__ == "__main__":
    main()
