"""How long a page takes to open on a warm server (issue 27: "the pages open in ≤ 2 s").

``python -m bench page_open [-- --page Evaluation --page Monitor --repeats 5 --runs 4]``

In one run: a results folder (``ERT_RUNS_DIR``) with the demo set and ``--runs`` finished
runs (one real faster-whisper tiny.en run on 3 clips, copied), a real ``streamlit run
ERT.py`` and Debian's Chromium through Playwright. The server is warmed as a user warms it,
by opening the chat page (what ``make run`` shows first) and leaving it idle ``--settle``
seconds (10: a user reading it); then each page is opened for the first time (``first``:
its own imports and caches), then ``--repeats`` more times, each in a fresh browser context
(a new session, as a new tab is). Each figure is the time from navigation to the end of the
page's first script run (Streamlit's ``stApp`` element says
``data-test-script-state="notRunning"``), i.e. the first full render, with the CPU seconds
the server spent meanwhile (which the other jobs of a shared machine move less). The
baseline, measured in the same run by the same browser, is a page that only writes a title
(``bench/baselines/empty_page.py``, served on its own): what Streamlit itself takes, so
``× empty page`` says what the page adds.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import save, table, tree_cpu_seconds
from tests.browser import CHROMIUM, CHROMIUM_FLAGS, REPO, streamlit_process

BASELINE = REPO / "bench" / "baselines" / "empty_page.py"
EMPTY = "empty"
GOAL_S = 2.0
RENDERED = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def prepare_runs(out: Path, runs: int) -> None:
    """The demo set and ``runs`` finished runs (one real run, copied)."""
    from core.demo_data import make_demo_dataset
    from core.evaluation import runner
    from core.evaluation.config import RunConfig

    manifest = make_demo_dataset(out / "demo-data", langs=("en",), count=3)
    first = runner.start(RunConfig(dataset=str(manifest), out_dir=str(out), use_cache=False,
                                   models=["faster-whisper:tiny.en"])).run_dir
    for index in range(1, runs):
        shutil.copytree(first, first.with_name(f"{first.name}-copy{index}"))


def open_once(browser: Any, url: str, server: Any = None, timeout_s: float = 120.0
              ) -> tuple[float, float]:
    """Seconds from navigation to the end of the first script run, in a new session, and
    the CPU seconds the server's processes spent meanwhile (a figure the other jobs on a
    shared machine move less than the wall time)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        cpu = tree_cpu_seconds(server) if server is not None else 0.0
        began = time.perf_counter()
        page.goto(url)
        page.wait_for_selector(RENDERED, state="attached", timeout=timeout_s * 1000)
        wall = time.perf_counter() - began
        return wall, (tree_cpu_seconds(server) - cpu if server is not None else 0.0)
    finally:
        context.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(prog="python -m bench page_open")
    parser.add_argument("--page", action="append", dest="pages",
                        help="page name as in its URL (Evaluation, Monitor, Compare; '' for "
                             "the chat page); repeatable; default Evaluation")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs", type=int, default=4, help="finished runs in the folder")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds the server stays idle after its first page")
    args = parser.parse_args(argv or [])
    pages = args.pages or ["Evaluation"]
    times: dict[str, list[tuple[float, float]]] = {}  # (wall s, server CPU s) per open
    firsts: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ert-bench-pages-") as tmp, \
            sync_playwright() as pw:
        runs = Path(tmp) / "runs"
        prepare_runs(runs, args.runs)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        env = {"ERT_RUNS_DIR": str(runs)}
        for script, names in ((BASELINE, [EMPTY]), (REPO / "ERT.py", pages)):
            with streamlit_process(str(script.relative_to(REPO)), env=env) as (url, proc):
                server = psutil.Process(proc.pid)
                open_once(browser, url)  # a warm server: its first page served, then idle
                time.sleep(args.settle)
                for name in names:
                    path = "" if name == EMPTY else name
                    firsts[name] = open_once(browser, f"{url}/{path}", server)
                    times[name] = [open_once(browser, f"{url}/{path}", server)
                                   for _ in range(args.repeats)]
                    print(f"  {name or 'chat'}: first {firsts[name][0]:.2f} s, then "
                          + ", ".join(f"{t:.2f}" for t, _ in times[name]), file=sys.stderr,
                          flush=True)
        browser.close()
    def row(name: str) -> dict[str, Any]:
        walls = [wall for wall, _ in times[name]]
        again = statistics.median(walls)
        return {"page": name or "chat", "first s": firsts[name][0],
                "first server CPU s": firsts[name][1], "again s (median)": again,
                "min s": min(walls), "max s": max(walls),
                "again server CPU s": statistics.median(c for _, c in times[name]),
                "again × empty page": again / floor,
                f"≤ {GOAL_S:.0f} s": max(firsts[name][0], again) <= GOAL_S}

    floor = statistics.median(wall for wall, _ in times[EMPTY])
    rows = [row(name) for name in pages] + [{**row(EMPTY), "page": "empty (baseline)",
                                             f"≤ {GOAL_S:.0f} s": None}]
    print(table(rows, "Page open on a warm server (the chat page served first), navigation "
                      f"to the first full render: the page's first open, then the median of "
                      f"{args.repeats} fresh sessions; {args.runs} runs in the folder"))
    result = {"rows": rows, "times": times, "firsts": firsts, "empty_s": floor,
              "repeats": args.repeats, "runs": args.runs}
    print(f"saved {save('page_open', result)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
