"""Issue 28 on the outputs: one figure declaration reaches every output, and the Compare
page's "Where models fail" tab slices a run by a manifest column (AppTest and a browser)."""

from __future__ import annotations

from core.evaluation.planner import Plan, PlannedBatch, Strategy
from core.evaluation.records import SampleRecord
from core.evaluation.results import write_results
from core.evaluation.run_dir import RESULTS_CSV, RunDir
from core.figures import FIGURES, register_figure

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

MODELS = ("whisper:base-fr", "whisper:tuned-fr")


def accent_run(root: Path, run_id: str = "20260102-000000-acct") -> Path:
    """A finished run of two models on 24 clips with an ``accent`` column: the tuned model
    fixes every Québécois clip, the Parisian ones are alike."""
    run = RunDir(root / run_id)
    records = run.records()
    for model in MODELS:
        for n in range(24):
            accent = "quebec" if n % 2 else "paris"
            reference = f"le chat numero {n} dort sur le tapis"
            wrong = accent == "quebec" and model == MODELS[0]
            hypothesis = reference.replace("chat", "chien") if wrong else reference
            records.add_sample(SampleRecord(
                id=f"fr_{n:03d}", model=model, batch="b", audio_filepath=None,
                reference=reference, hypothesis=hypothesis, language="fr",
                duration=2.0 + n % 3, time=0.1, extra={"accent": accent, "speaker": f"s{n}"}))
    plan = Plan("cpu", 1.0, 1.0, Strategy.CONSERVATIVE, [PlannedBatch("b", list(MODELS), 0.2,
                                                                      "two models")])
    run.write_plan(plan)
    manifest = {"run_id": run_id, "samples": 24, "dataset": "accents.jsonl",
                "config": {"baseline": MODELS[0], "slice_by": ["accent"]}}
    run.write_manifest(manifest)
    write_results(run, plan, manifest, 24)
    return run.path


@pytest.fixture
def dummy_figure() -> Iterator[str]:
    """A figure declared the way the README says: one declaration plus its function."""
    name = "dummy_share_of_long_refs"

    @register_figure(name, "long refs %", unit="%", scale=100,
                     per_sample=lambda s, _: float(s.ref_words > 100))
    def share(samples):
        return sum(s.ref_words > 100 for s, _ in samples) / len(samples)

    yield name
    del FIGURES[name]


def test_a_declared_figure_reaches_json_csv_and_both_tables(tmp_path, dummy_figure, capsys):
    from core.evaluation.cli_report import print_report

    path = accent_run(tmp_path)
    run = RunDir(path)
    consolidated = json.loads(run.latest("consolidated_results").read_text())
    assert consolidated["models"][MODELS[0]]["figures"][dummy_figure] == 0.0
    with (path / RESULTS_CSV).open(encoding="utf-8", newline="") as handle:
        assert all(row[dummy_figure] == "0.0" for row in csv.DictReader(handle))
    assert dummy_figure in run.read_detailed()[0]  # the per-sample value
    print_report(type("Outcome", (), {"run_dir": path, "worker_failures": [], "notes": [],
                                      "cancelled": False})())
    assert "long refs % 0.0" in capsys.readouterr().out
    from core.scoring import Prediction, render_table, score_predictions

    table = render_table(score_predictions([Prediction("m", "1", "a b", "a b", "en")]))
    assert "long refs %" in table


def test_a_declared_figure_is_a_column_of_both_pages(tmp_path, dummy_figure, monkeypatch):
    from streamlit.testing.v1 import AppTest

    accent_run(tmp_path)
    monkeypatch.setenv("ERT_RUNS_DIR", str(tmp_path))
    compare = AppTest.from_file(str(REPO / "pages" / "3_Compare.py"), default_timeout=120)
    compare.run()
    assert not compare.exception, compare.exception
    assert "long refs %" in compare.dataframe[0].value.columns
    evaluation = AppTest.from_file(str(REPO / "pages" / "1_Evaluation.py"), default_timeout=120)
    evaluation.run()
    assert not evaluation.exception, evaluation.exception
    evaluation.selectbox(key="eval_run_choice").set_value("20260102-000000-acct").run()
    assert any("long refs %" in frame.value.columns for frame in evaluation.dataframe)


def test_compare_slices_a_run_by_a_manifest_column(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    accent_run(tmp_path)
    monkeypatch.setenv("ERT_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(str(REPO / "pages" / "3_Compare.py"), default_timeout=120)
    at.run()
    assert "accent" in at.selectbox(key="where_slice").options
    assert "speaker" not in at.selectbox(key="where_slice").options  # one value per clip
    at.selectbox(key="where_slice").set_value("accent").run()
    at.selectbox(key="where_base").set_value(MODELS[0]).run()
    assert not at.exception, at.exception
    table = next(f.value for f in at.dataframe if "slice" in f.value.columns)
    tuned = table[table["model"] == MODELS[1]].set_index("slice")
    assert tuned.loc["quebec", "WER %"] == 0.0 and tuned.loc["quebec", "verdict"] == "better"
    assert tuned.loc["paris", "verdict"] == "no significant difference"


@pytest.mark.browser
@pytest.mark.slow
def test_browser_compare_picks_a_slice_and_shows_its_table_and_chart(tmp_path):
    from tests.browser import chromium_page, streamlit_process

    accent_run(tmp_path)
    with streamlit_process("ERT.py", env={"ERT_RUNS_DIR": str(tmp_path)}) as (url, _), \
            chromium_page() as page:
        page.goto(f"{url}/Compare")
        page.get_by_role("tab", name="Where models fail").click()
        page.get_by_text("Slice by").wait_for(timeout=60_000)
        page.get_by_role("combobox", name="Slice by").click()
        page.get_by_role("option", name="accent").click()
        chart = page.locator("[data-testid='stVegaLiteChart']").first
        chart.wait_for(timeout=60_000)
        # The chart's x axis names the slice values (the table is a canvas grid).
        chart.get_by_text("quebec").first.wait_for(timeout=60_000)
        assert chart.get_by_text("paris").count() >= 1
        assert page.locator("[data-testid='stDataFrame']").count() >= 2


def test_evaluation_page_slices_a_finished_run(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    accent_run(tmp_path)
    monkeypatch.setenv("ERT_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(str(REPO / "pages" / "1_Evaluation.py"), default_timeout=120)
    at.run()
    at.selectbox(key="eval_run_choice").set_value("20260102-000000-acct").run()
    at.selectbox(key="eval_slice").set_value("accent").run()
    assert not at.exception, at.exception
    table = next(f.value for f in at.dataframe if "slice" in f.value.columns)
    assert set(table["slice"]) == {"paris", "quebec"}
    assert table[(table["model"] == MODELS[0]) & (table["slice"] == "quebec")]["WER %"].iloc[0] > 0
