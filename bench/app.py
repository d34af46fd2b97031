"""What the running app costs: the Monitor page open, hidden and closed, before and after.

``python -m bench app`` — in one run, three steps:

* ``before``: the Monitor as it was (Plotly figures rebuilt from the whole history by an
  ``st.fragment(run_every=…)``: ``bench/baselines/monitor_plotly.py``) with Streamlit's
  ``runner.postScriptGC`` on, as it was (a full ``gc.collect`` after every run);
* ``no GC``: the same page with ``postScriptGC`` off (the repo's config now);
* ``after``: ``pages/2_Monitor.py`` (one custom component, new samples only, refresh asked by
  the browser while visible), ``postScriptGC`` off;

* a real ``streamlit run`` (the repo's ``.streamlit/config.toml``) and Debian's Chromium
  driven by Playwright, the Monitor page open at the default 1 s refresh, then hidden, then
  at 5 s open and hidden, then the tab closed;
* CPU of the server's process tree and of the browser's processes, from psutil CPU times over
  ``WINDOW_S`` seconds per phase, in % of one core;
* then, for the current app, each other page left open (goal < 1 % for the server).

Headless Chromium always reports its pages visible, so "hidden" is the standard
``visibilitychange`` event with ``document.visibilityState`` set to ``"hidden"`` (an init
script): what a page sees when its tab goes to the background. A real hidden tab also stops
painting, so browser figures for "hidden" are upper bounds.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)

import sys
import time
from typing import Any

import psutil

from bench.common import save, table, tree_cpu_seconds
from tests.browser import CHROMIUM, CHROMIUM_FLAGS, HIDDEN_SWITCH, streamlit_process

WINDOW_S = 20.0
SETTLE_S = 6.0
BASELINE = "bench/baselines/monitor_plotly.py"


def _browser_cpu() -> float:
    """CPU seconds of this process's Chromium descendants (Playwright's browser)."""
    total = 0.0
    for proc in psutil.Process().children(recursive=True):
        try:
            if "chrom" in proc.name().lower():
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


def _measure(server: psutil.Process, settle: float = SETTLE_S) -> tuple[float, float]:
    """% of one core used by the server tree and the browser over ``WINDOW_S``."""
    time.sleep(settle)
    s0, b0, t0 = tree_cpu_seconds(server), _browser_cpu(), time.perf_counter()
    time.sleep(WINDOW_S)
    elapsed = time.perf_counter() - t0
    return (100 * (tree_cpu_seconds(server) - s0) / elapsed,
            100 * (_browser_cpu() - b0) / elapsed)


def _set_refresh(page: Any, seconds: float) -> None:
    """Move the sidebar's "Refresh every (s)" select-slider (0.5, 1, 2, 5, 10) by keyboard."""
    steps = {1.0: 0, 2.0: 1, 5.0: 2}[seconds]
    slider = page.get_by_role("slider").first
    slider.focus()
    for _ in range(steps):
        slider.press("ArrowRight")


def _monitor_phases(name: str, script: str, path: str, pw: Any,
                    options: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with streamlit_process(script, options=options) as (base, proc):
        server = psutil.Process(proc.pid)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.add_init_script(HIDDEN_SWITCH)
            page = context.new_page()
            page.goto(base + path)
            page.get_by_text("CPU %").first.wait_for(timeout=90_000)

            def phase(label: str) -> None:
                server_pct, browser_pct = _measure(server)
                rows.append({"monitor": name, "phase": label, "server %": server_pct,
                             "browser %": browser_pct})
                print(f"  {name:7s} {label:14s} server {server_pct:5.1f} %  "
                      f"browser {browser_pct:5.1f} %", file=sys.stderr, flush=True)

            phase("open, 1 s")
            page.evaluate("window.__ertSetHidden(true)")
            phase("hidden, 1 s")
            page.evaluate("window.__ertSetHidden(false)")
            _set_refresh(page, 5.0)
            phase("open, 5 s")
            page.evaluate("window.__ertSetHidden(true)")
            phase("hidden, 5 s")
            page.close()
            phase("closed")
            if name == "after":  # the other pages, left open, on the same server
                for other in ("/", "/Evaluation", "/Compare"):
                    page = context.new_page()
                    page.goto(base + other)
                    page.wait_for_load_state("networkidle")
                    phase(f"page {other}")
                    page.close()
        finally:
            browser.close()
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        rows = _monitor_phases("before", BASELINE, "/", pw, ("--runner.postScriptGC", "true"))
        rows += _monitor_phases("no GC", BASELINE, "/", pw)
        rows += _monitor_phases("after", "ERT.py", "/Monitor", pw)
    before = {r["phase"]: r for r in rows if r["monitor"] == "before"}
    for row in rows:
        base = before.get(row["phase"]) if row["monitor"] == "after" else None
        row["server × before"] = row["server %"] / base["server %"] \
            if base and base["server %"] > 0 else None
    print(table(rows, f"Monitor page CPU, % of one core over {WINDOW_S:.0f} s per phase "
                      "(goals after: server ≤ 5 % open at 1 s, ≤ 1 % hidden/closed and on "
                      "other pages; browser ≤ 10 %)"))
    after = {r["phase"]: r for r in rows if r["monitor"] == "after"}
    goals = {
        "server open 1 s ≤ 5 %": after["open, 1 s"]["server %"] <= 5,
        "browser open 1 s ≤ 10 %": after["open, 1 s"]["browser %"] <= 10,
        "server hidden ≤ 1 %": max(after["hidden, 1 s"]["server %"],
                                   after["hidden, 5 s"]["server %"]) <= 1,
        "server closed ≤ 1 %": after["closed"]["server %"] <= 1,
        "other pages ≤ 1 %": all(r["server %"] <= 1 for p, r in after.items()
                                 if p.startswith("page ")),
    }
    for goal, met in goals.items():
        print(f"  {'met ' if met else 'MISS'} {goal}")
    result = {"window_s": WINDOW_S, "rows": rows, "goals": goals}
    print(f"saved {save('app', result)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
