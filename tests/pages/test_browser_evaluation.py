"""The Evaluation page in a real browser: the run it starts, and one figure per model."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import chromium_page, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory):
    """A results folder with the demo set (3 English clips) and one finished 3-clip run;
    its own transcript cache and measurements, so the page's run transcribes afresh."""
    from core.demo_data import make_demo_dataset
    from core.evaluation import runner
    from core.evaluation.config import RunConfig

    import os

    root = tmp_path_factory.mktemp("eval-page")
    runs = root / "runs"
    manifest = make_demo_dataset(runs / "demo-data", langs=("en",), count=3)
    previous = os.environ.get("ERT_CACHE_DIR")
    os.environ["ERT_CACHE_DIR"] = str(root / "cache-earlier")
    try:
        run = runner.start(RunConfig(dataset=str(manifest), out_dir=str(runs),
                                     models=["faster-whisper:tiny.en"])).run_dir
    finally:
        os.environ["ERT_CACHE_DIR"] = previous or ""
        if previous is None:
            del os.environ["ERT_CACHE_DIR"]
    env = {"ERT_RUNS_DIR": str(runs), "ERT_CACHE_DIR": str(root / "cache-page"),
           "HF_HUB_CACHE": str(root / "hub-cache")}  # nothing downloaded
    return {"runs": runs, "run": run.name, "env": env}


def _grid(page, index: int) -> list[dict[str, str]]:
    """The rows of the page's ``index``-th table as its accessible grid gives them."""
    grid = page.get_by_test_id("stDataFrame").nth(index)
    cells = grid.locator('[role="gridcell"]')  # the grid's accessible copy (not visible)
    cells.first.wait_for(state="attached", timeout=30_000)
    header = grid.locator('[role="columnheader"]').all_inner_texts()
    cells = cells.all_inner_texts()
    return [dict(zip(header, cells[i:i + len(header)], strict=True))
            for i in range(0, len(cells), len(header))]


def test_browser_evaluation_picker_plan_and_reason_show_one_figure_per_model(
        artifacts_dir, earlier_run):
    with streamlit_server(env=earlier_run["env"],
                          log=artifacts_dir / "server-eval-figures.log") as url, \
            chromium_page() as page:
        page.goto(f"{url}/Evaluation")
        page.get_by_text("Estimated time").wait_for(timeout=90_000)
        models = page.locator(".st-key-eval_models")  # the picker by its key, not its place
        chip = models.get_by_text(
            re.compile("^faster-whisper:tiny.en · "))
        expect(chip).to_have_text(re.compile(r"· \d+\.\d\d GB \(estimated\)$"))
        option = chip.inner_text()
        figure = re.search(r"(\d+\.\d\d GB)", option).group(1)
        (batch,) = _grid(page, 0)
        assert batch["models"] == option, (batch, option)  # the picker's text, verbatim
        assert batch["needs"] == figure
        assert batch["why"].startswith(f"{figure} of "), batch
        # The picker marks what is not on this machine, before anything runs.
        models.locator("input").click()
        page.get_by_role("option", name=re.compile(
            r"^whisper:tiny · \d+\.\d\d GB \(estimated\) · needs a download: \d+\.\d\d GB$")
        ).wait_for(timeout=10_000)
        page.screenshot(path=str(artifacts_dir / "page-evaluation-figures.png"))


def test_browser_evaluation_follows_the_run_it_started_and_keeps_its_final_figures(
        artifacts_dir, earlier_run):
    with streamlit_server(env=earlier_run["env"],
                          log=artifacts_dir / "server-eval-follow.log") as url, \
            chromium_page() as page:
        page.goto(f"{url}/Evaluation")
        page.get_by_text("Estimated time").wait_for(timeout=90_000)
        selector = page.get_by_role("combobox", name="Run")
        expect(selector).to_have_value(re.compile(f"^{earlier_run['run']} · "))
        page.get_by_text("finished · 3 samples × 1 model · 3 of 3 done").wait_for()
        samples = page.get_by_label("Samples (reproducible subset; 0 = all)")
        samples.fill("2")
        samples.press("Enter")
        expect(page.get_by_test_id("stMetricValue").first).to_have_text("2", timeout=30_000)
        page.get_by_role("button", name=re.compile("Start evaluation")).click()
        # The new run, not the earlier one, from the click on: no fresh tab needed.
        page.get_by_text(re.compile(r"^(running|finished) · 2 samples × 1 model")).wait_for(
            timeout=60_000)
        (new,) = [p.name for p in earlier_run["runs"].iterdir()
                  if p.name not in (earlier_run["run"], "demo-data")]
        expect(selector).to_have_value(re.compile(f"^{new} · "))
        page.get_by_text("finished · 2 samples × 1 model · 2 of 2 done").wait_for(
            timeout=240_000)
        page.get_by_test_id("stImage").first.wait_for(timeout=60_000)  # the whole page redrawn
        progress = next(r for r in _grid(page, 1) if r["model"] == "faster-whisper:tiny.en")
        assert progress["status"] == "ok", progress
        assert re.fullmatch(r"\d+", progress["batch size"]), progress  # not "—" once finished
        assert re.fullmatch(r"\d+(\.\d+)?", progress["samples/s"]), progress
        assert page.get_by_test_id("stException").count() == 0
        page.screenshot(path=str(artifacts_dir / "page-evaluation-follows.png"))
