"""A real Streamlit server and Debian's Chromium, shared by the browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
REPO = Path(__file__).resolve().parent.parent
# Headless Chromium reports every page visible; this init script lets a test or benchmark
# switch the standard document.visibilityState / visibilitychange a background tab produces.
HIDDEN_SWITCH = """(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, "visibilityState",
                        {get() { return hidden ? "hidden" : "visible"; }, configurable: true});
  Object.defineProperty(Document.prototype, "hidden",
                        {get() { return hidden; }, configurable: true});
  window.__ertSetHidden = (value) => {
    hidden = value;
    document.dispatchEvent(new Event("visibilitychange"));
  };
})();"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def streamlit_process(script: str = "ERT.py", port: int | None = None,
                      env: dict[str, str] | None = None, log: Path | None = None,
                      options: tuple[str, ...] = ()) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start ``streamlit run SCRIPT`` (repo-relative) on loopback with the repo's config and
    the repo on ``PYTHONPATH`` (``options``: more ``--section.option value`` flags); yield
    its base URL and process; stop it."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / script),
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", *options]
    out = log.open("wb") if log else subprocess.DEVNULL
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc=proc)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()


@contextmanager
def streamlit_server(port: int | None = None, env: dict[str, str] | None = None,
                     log: Path | None = None) -> Iterator[str]:
    """``streamlit run ERT.py`` on loopback: yield its base URL."""
    with streamlit_process("ERT.py", port, env, log) as (url, _):
        yield url


def grid_rows(page: object, index: int = 0) -> list[dict[str, str]]:
    """The rows of the page's ``index``-th ``st.dataframe`` as its accessible grid gives them
    (the cells themselves are drawn on a canvas, the grid is the canvas's fallback content:
    hidden to role locators). Only the columns scrolled into view are there."""
    grid = page.get_by_test_id("stDataFrame").nth(index)
    grid.locator('[role="gridcell"]').first.wait_for(state="attached", timeout=30_000)
    header = grid.locator('[role="columnheader"]').all_text_contents()
    cells = grid.locator('[role="gridcell"]').all_text_contents()
    return [dict(zip(header, cells[i:i + len(header)], strict=True))
            for i in range(0, len(cells), len(header))]


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()
