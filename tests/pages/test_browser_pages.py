"""Every page in a real browser: upload and transcribe, run a 5-sample evaluation to the end."""

from __future__ import annotations

import io
import re

import pytest
import soundfile
from playwright.sync_api import expect

from tests.browser import chromium_page, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _no_exception(page) -> None:
    assert page.get_by_test_id("stException").count() == 0


def test_browser_pages_upload_and_evaluation(artifacts_dir, tmp_path):
    from core.demo_data import make_demo_dataset, synthesize

    runs = tmp_path / "runs"
    make_demo_dataset(runs / "demo-data", langs=("en",), count=5)
    wav = tmp_path / "fox.wav"
    buffer = io.BytesIO()
    soundfile.write(buffer, synthesize("the quick brown fox jumps over the lazy dog", "en"),
                    16000, format="WAV")
    wav.write_bytes(buffer.getvalue())
    env = {"ERT_RUNS_DIR": str(runs)}
    with streamlit_server(env=env, log=artifacts_dir / "server-pages.log") as url, \
            chromium_page() as page:
        # Evaluation: the demo set and tiny.en are the defaults; 5 samples.
        page.goto(f"{url}/Evaluation")
        page.get_by_text("Estimated time").wait_for(timeout=90_000)
        samples = page.get_by_label("Samples (reproducible subset; 0 = all)")
        samples.fill("5")
        samples.press("Enter")
        expect(page.get_by_test_id("stMetricValue").first).to_have_text("5", timeout=30_000)
        page.get_by_role("button", name=re.compile("Start evaluation")).click()
        page.get_by_text("finished · 5 samples × 1 model · 5 of 5 done").wait_for(
            timeout=300_000)
        page.get_by_test_id("stImage").first.wait_for(timeout=60_000)  # the results chart
        _no_exception(page)
        page.screenshot(path=str(artifacts_dir / "page-evaluation.png"), full_page=True)

        page.goto(f"{url}/Monitor")
        page.get_by_text("CPU %").first.wait_for(timeout=60_000)
        page.get_by_text("No GPU visible").wait_for(timeout=30_000)
        _no_exception(page)
        page.screenshot(path=str(artifacts_dir / "page-monitor.png"), full_page=True)

        page.goto(f"{url}/Compare")
        page.get_by_text("Export CSV").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Upload audio").click()
        page.locator("input[type=file]").last.set_input_files(str(wav))
        page.get_by_role("button", name="Transcribe").click()
        page.get_by_text("RTFx").last.wait_for(timeout=180_000)
        body = page.get_by_role("tabpanel").last.inner_text().lower()
        assert "fox" in body
        _no_exception(page)
        page.screenshot(path=str(artifacts_dir / "page-compare-upload.png"), full_page=True)

        page.goto(url)
        page.get_by_text("Chat with your documents").wait_for(timeout=60_000)
        _no_exception(page)
        page.screenshot(path=str(artifacts_dir / "page-chat.png"), full_page=True)


def test_browser_compare_shows_wer_error_bars_and_the_verdict(artifacts_dir, tmp_path):
    from core.demo_data import make_demo_dataset
    from core.evaluation import runner
    from core.evaluation.config import RunConfig

    runs = tmp_path / "runs"
    manifest = make_demo_dataset(runs / "demo-data", langs=("en",), count=3)
    runner.start(RunConfig(dataset=str(manifest), out_dir=str(runs), use_cache=False,
                           models=["faster-whisper:tiny.en", "faster-whisper:base"]))
    with streamlit_server(env={"ERT_RUNS_DIR": str(runs)},
                          log=artifacts_dir / "server-compare.log") as url, \
            chromium_page() as page:
        page.goto(f"{url}/Compare")
        page.get_by_text("Export CSV").wait_for(timeout=90_000)
        # Plotly draws each bar's interval as an error-bar path in the WER chart.
        page.locator("g.errorbar path").first.wait_for(state="attached", timeout=60_000)
        assert page.locator("g.errorbar").count() >= 2
        # Charts are titled with their unit, and their x axis says what a bar is.
        expect(page.locator("text.gtitle").filter(has_text=re.compile(r"^WER %$"))).to_be_visible()
        expect(page.locator("text.gtitle").filter(has_text="peak RAM GB")).to_be_visible()
        assert "model · run" in page.locator("text.xtitle").all_text_contents()
        page.get_by_role("tab", name="Baseline vs candidate").click()
        verdict = page.get_by_test_id("stAlertContentInfo").filter(
            has_text="95 % interval").filter(visible=True).first
        verdict.wait_for(timeout=60_000)
        assert re.search(r"no significant difference: WER [-+]\d", verdict.inner_text())
        _no_exception(page)
        page.screenshot(path=str(artifacts_dir / "page-compare-verdict.png"), full_page=True)
