"""The Monitor page in a real browser: it keeps updating while seen, and stops when hidden."""

import pytest

from tests.browser import CHROMIUM, CHROMIUM_FLAGS, HIDDEN_SWITCH, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

def _seq(page) -> int:
    return int(page.locator(".ert-monitor").get_attribute("data-seq"))


def _wait_seq_above(page, value: int, timeout_ms: int = 60_000) -> int:
    """Poll through the locator (the component lives in a shadow root, out of reach of
    document.querySelector) until the browser holds a sample newer than ``value``."""
    for _ in range(timeout_ms // 250):
        if (seq := _seq(page)) > value:
            return seq
        page.wait_for_timeout(250)
    raise AssertionError(f"the monitor stayed at sample {value}")


def test_monitor_keeps_updating_while_seen_and_asks_nothing_when_hidden(artifacts_dir):
    from playwright.sync_api import sync_playwright

    with streamlit_server(log=artifacts_dir / "server-monitor.log") as url, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.add_init_script(HIDDEN_SWITCH)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/Monitor")
            page.locator(".ert-chart canvas").first.wait_for(timeout=90_000)
            assert page.locator(".ert-chart").count() == 4  # CPU, memory, processes ×2
            page.get_by_text("No GPU visible").wait_for(timeout=30_000)
            first = _seq(page)
            _wait_seq_above(page, first + 2)
            points = int(page.locator(".ert-monitor").get_attribute("data-points"))
            assert points >= first + 3  # samples were appended, not replaced

            page.evaluate("window.__ertSetHidden(true)")
            page.wait_for_timeout(1500)  # a tick already asked for may still land
            hidden_at = _seq(page)
            page.wait_for_timeout(4000)  # four refresh intervals
            assert _seq(page) == hidden_at, "a hidden page kept asking for samples"

            page.evaluate("window.__ertSetHidden(false)")
            _wait_seq_above(page, hidden_at)
            page.screenshot(path=str(artifacts_dir / "page-monitor-live.png"), full_page=True)
            assert not errors, errors
            assert page.get_by_test_id("stException").count() == 0
        finally:
            browser.close()


def test_gpu_panel_draws_samples_recorded_on_a_gpu_machine(artifacts_dir):
    """Two H200s sampled through NVML by scripts/record_gpu_monitor.py, drawn by the chart."""
    from tests.browser import chromium_page, streamlit_process

    with streamlit_process("scripts/replay_monitor.py",
                           log=artifacts_dir / "server-monitor-gpu.log") as (url, _), \
            chromium_page() as page:
        page.goto(url)
        page.locator('[data-chart="gpu1"] canvas').first.wait_for(timeout=90_000)
        labels = page.locator(".ert-gpu").all_inner_texts()
        assert len(labels) == 2 and all("NVIDIA H200" in label for label in labels)
        assert "W" in labels[0] and "°C" in labels[0]
        assert page.locator(".ert-chart").count() == 6  # CPU, memory, processes ×2, GPU ×2
        page.screenshot(path=str(artifacts_dir / "page-monitor-gpu.png"), full_page=True)


# uPlot's axis font (its default), to measure the tick labels as they are drawn.
AXIS_FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, ' \
    '"Noto Sans", sans-serif'


def test_monitor_time_axis_is_readable_at_1400_px_and_legends_show_values(artifacts_dir):
    """Issue 27: the time axis read "12/6/26 9:08pm9:09pm" (labels run together, the first
    digit cut off) and every legend entry was "—"."""
    import json
    import re

    from tests.browser import chromium_page

    with streamlit_server(log=artifacts_dir / "server-monitor-axis.log") as url, \
            chromium_page(width=1400) as page:
        page.goto(f"{url}/Monitor")
        page.locator(".ert-chart canvas").first.wait_for(timeout=90_000)
        _wait_seq_above(page, _seq(page) + 2)
        for chart in page.locator(".ert-chart").all():
            ticks = json.loads(chart.get_attribute("data-x-ticks") or "[]")
            width = float(chart.get_attribute("data-width"))
            labels = [t["label"] for t in ticks]
            assert len(ticks) >= 3 and all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in labels)
            assert len(set(labels)) == len(labels), labels
            sizes = page.evaluate("([font, labels]) => { const c = document.createElement("
                                  "'canvas').getContext('2d'); c.font = font; "
                                  "return labels.map(l => c.measureText(l).width); }",
                                  [AXIS_FONT, labels])
            spans = [(t["x"] - w / 2, t["x"] + w / 2) for t, w in zip(ticks, sizes, strict=True)]
            assert spans[0][0] >= 0 and spans[-1][1] <= width, (spans, width)  # none cut off
            gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False)]
            assert min(gaps) >= 8, spans  # labels apart
            legend = chart.locator(".u-legend").inner_text()
            assert "time" in legend and not re.search(r"—|--", legend), legend
        page.screenshot(path=str(artifacts_dir / "page-monitor-axis.png"), full_page=True)
