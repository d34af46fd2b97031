"""Issue 29 on the pages: the Compare page's Robustness tab (table, chart, and each clip
under each condition beside each model's transcript, through AppTest and a browser), and
the Evaluation page's conditions multiselect reaching the plan."""

from __future__ import annotations

from core.condition_views import heard
from core.conditions import expand, item_id, parse_conditions
from core.datasets import load_dataset_spec
from core.evaluation.config import RunConfig
from core.evaluation.planner import Plan, PlannedBatch, Strategy
from core.evaluation.records import SampleRecord
from core.evaluation.results import write_results
from core.evaluation.run_dir import RunDir

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

MODELS = ("whisper:base-fr", "whisper:tuned-fr")
CONDITIONS = ["clean", "noise:snr=10", "telephone"]
RUN_ID = "20260103-000000-cond"


@pytest.fixture(scope="module")
def conditions_run(tmp_path_factory) -> Path:
    """A finished run of two models on ten espeak-ng clips under three conditions: the
    first model drops a word under noise and telephone, the second never does."""
    from core.demo_data import make_demo_dataset

    root = tmp_path_factory.mktemp("runs")
    manifest = make_demo_dataset(root.parent / "demo", langs=("en",), count=10)
    config = RunConfig(dataset=str(manifest), models=list(MODELS), out_dir=str(root),
                       run_id=RUN_ID, conditions=list(CONDITIONS), baseline=MODELS[0])
    config.resolve_conditions()
    run = RunDir(config.run_dir)
    run.write_config(config)
    records = run.records()
    for sample in load_dataset_spec(str(manifest)):
        for model in MODELS:
            for condition in CONDITIONS:
                worse = model == MODELS[0] and condition != "clean"
                said = sample.text.split(" ", 1)[-1] if worse else sample.text
                records.add_sample(SampleRecord(
                    id=item_id(sample.id, condition), model=model, batch="b",
                    audio_filepath=str(sample.audio_filepath), reference=sample.text,
                    hypothesis=said, language="en", duration=sample.duration, time=0.1,
                    condition=condition))
    plan = Plan("cpu", 1.0, 1.0, Strategy.CONSERVATIVE,
                [PlannedBatch("b", list(MODELS), 0.2, "two models")], conditions=CONDITIONS)
    run.write_plan(plan)
    info = {"run_id": RUN_ID, "samples": 30, "dataset": str(manifest),
            "config": config.to_dict()}
    run.write_manifest(info)
    write_results(run, plan, info, 30)
    return run.path


def _pcm(wav: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(wav)) as handle:
        return np.frombuffer(handle.readframes(handle.getnframes()), np.int16)


def test_heard_plays_each_condition_as_the_models_heard_it(conditions_run):
    """The bytes the page plays are the work items' audio (the worker's input), one per
    condition, and they differ between conditions."""
    config = RunDir(conditions_run).read_config()
    samples = load_dataset_spec(config.dataset)
    clip = samples[1].id
    played = {h.condition: h for h in heard(conditions_run, clip)}
    assert list(played) == CONDITIONS and not any(h.error for h in played.values())
    items = {i.condition: i for i in expand(samples, parse_conditions(CONDITIONS))
             if i.clip_id == clip}
    for condition, item in items.items():
        expected = np.round(np.clip(item.load_audio(), -1, 1) * 32767)
        assert np.abs(_pcm(played[condition].wav) - expected).max() <= 1, condition
    pcm = {c: _pcm(h.wav) for c, h in played.items()}
    assert not np.array_equal(pcm["clean"], pcm["noise:snr=10"])


def test_heard_says_why_when_the_dataset_is_gone(conditions_run, tmp_path):
    import shutil

    moved = shutil.copytree(conditions_run, tmp_path / RUN_ID)
    config = RunDir(moved).read_config()
    config.dataset = str(tmp_path / "gone.jsonl")
    RunDir(moved).write_config(config)
    played = heard(moved, "en_000")
    assert [h.condition for h in played] == CONDITIONS
    assert all(h.wav is None and "cannot be read again" in h.error for h in played)


def test_compare_robustness_tab_shows_the_table_chart_and_a_player_per_condition(
        conditions_run, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ERT_RUNS_DIR", str(conditions_run.parent))
    at = AppTest.from_file(str(REPO / "pages" / "3_Compare.py"), default_timeout=120)
    at.run()
    at.selectbox(key="cond_run").set_value(RUN_ID).run()
    at.selectbox(key="cond_base").set_value(MODELS[0]).run()
    assert not at.exception, at.exception
    table = next(f.value for f in at.dataframe if "condition" in f.value.columns)
    assert len(table) == len(MODELS) * len(CONDITIONS)
    base = table[table["model"] == MODELS[0]].set_index("condition")
    assert base.loc["clean", "WER %"] == 0 and base.loc["telephone", "WER %"] > 0
    tuned = table[table["model"] == MODELS[1]].set_index("condition")
    versus = tuned.loc["telephone", "vs baseline"]
    assert versus.startswith("-") and f"vs {MODELS[0]}: better" in versus
    assert any("mean degradation" in c.value for c in at.caption)
    assert len(at.get("image")) >= 1  # the WER-against-severity chart
    players = at.get("audio")
    assert len(players) == len(CONDITIONS)
    assert len({p.proto.url for p in players}) == len(CONDITIONS)  # three different clips
    clip = at.selectbox(key="cond_clip").value
    said = [m.value for m in at.markdown  # the Robustness tab's lines, not Per sample's
            if m.value.startswith(f"**{MODELS[1]}** · WER") and " — " in m.value]
    assert len(said) == len(CONDITIONS) and clip.startswith("en_")


def test_compare_says_a_run_without_conditions_has_none(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.pages.test_failures import accent_run

    accent_run(tmp_path)
    monkeypatch.setenv("ERT_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(str(REPO / "pages" / "3_Compare.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert any("heard its clips as they are" in i.value for i in at.info)
    assert not at.get("audio")


def test_evaluation_conditions_multiply_the_plan(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ERT_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(str(REPO / "pages" / "1_Evaluation.py"), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    assert "noise:snr=10" in at.multiselect(key="eval_conditions").options
    alone = next(c.value for c in at.caption if "min of audio" in c.value)
    at.multiselect(key="eval_conditions").set_value(["clean", "telephone"]).run()
    assert not at.exception, at.exception
    both = next(c.value for c in at.caption if "min of audio" in c.value)
    assert "× 2 conditions" in both and "conditions" not in alone
    minutes = [float(text.split(" min")[0]) for text in (alone, both)]
    assert minutes[1] == pytest.approx(2 * minutes[0], abs=0.11)
    assert any("every clip × 2 conditions (clean, telephone)" in c.value.lower()
               for c in at.caption)


@pytest.mark.browser
@pytest.mark.slow
def test_browser_compare_plays_each_condition(conditions_run):
    from tests.browser import chromium_page, streamlit_process

    with streamlit_process("ERT.py", env={"ERT_RUNS_DIR": str(conditions_run.parent)}) as \
            (url, _), chromium_page() as page:
        page.goto(f"{url}/Compare")
        page.get_by_role("tab", name="Robustness").click()
        players = page.locator("[data-testid='stAudio']")
        players.nth(len(CONDITIONS) - 1).wait_for(timeout=60_000)
        assert players.count() == len(CONDITIONS)
        assert page.get_by_text("telephone", exact=True).count() >= 1
        page.locator("[data-testid='stImage'] img").first.wait_for(timeout=60_000)
