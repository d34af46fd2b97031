"""Languages end to end and sample independence, through real runs of the bundled models."""

from __future__ import annotations

from core.asr.base import DecodeOptions
from core.datasets import load_dataset_spec
from core.evaluation import run_plan, runner
from core.evaluation.config import RunConfig
from core.evaluation.run_dir import RunDir

import json

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Three English and three French espeak-ng clips of different lengths."""
    from core.demo_data import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("mixed"), langs=("en", "fr"), count=3)


def _run(mixed, tmp_path, models, **kw):
    config = RunConfig(dataset=str(mixed), models=models, out_dir=str(tmp_path / "runs"),
                       use_cache=False, **kw)
    outcome = runner.start(config)
    assert not outcome.worker_failures
    consolidated = json.loads(outcome.files["consolidated"].read_text())
    return outcome, consolidated["models"], RunDir(outcome.run_dir).records().sample_rows()


def test_english_only_model_skips_french_samples_with_the_reason(mixed, tmp_path):
    config = RunConfig(dataset=str(mixed), models=["faster-whisper:tiny.en"])
    samples = load_dataset_spec(str(mixed))
    plan = run_plan.plan_run(config, None, 0.0, run_plan.language_counts(samples))
    assert any("tiny.en" in w and "3 of 6 samples (3 fr)" in w and "skipped" in w
               for w in plan.warnings)
    _, models, rows = _run(mixed, tmp_path, ["faster-whisper:tiny.en"])
    m = models["faster-whisper:tiny.en"]
    assert m["skipped"] == 3 and m["failures"] == 0 and m["success_rate"] == 1.0
    assert set(m["languages"]) == {"en"}  # scored on English only
    assert m["wer"] < 0.5  # never the 430 % of scoring English-only output against French
    french = [r for r in rows if r["language"] == "fr"]
    assert len(french) == 3
    assert all(r["skipped"].startswith("wrong language: fr") and r["hypothesis"] == ""
               for r in french)


def test_all_languages_runs_an_english_only_model_on_everything(mixed, tmp_path):
    _, models, rows = _run(mixed, tmp_path, ["faster-whisper:tiny.en"], all_languages=True)
    assert models["faster-whisper:tiny.en"]["skipped"] == 0
    assert all(not r.get("skipped") and r["hypothesis"] for r in rows)


def test_mixed_manifest_is_decoded_in_each_samples_language_at_any_batch_size(mixed, tmp_path):
    """Each sample reaches the model with its own language, and its greedy transcript is the
    same at batch size 1, at a fixed batch of 6 and at the size the tuner picks."""
    model = ["faster-whisper:base"]
    texts = {}
    for name, kw in {"one": dict(tune_batch_size=False, decode=DecodeOptions(batch_size=1)),
                     "six": dict(tune_batch_size=False, decode=DecodeOptions(batch_size=6)),
                     "tuned": dict(max_batch_size=8)}.items():
        _, models, rows = _run(mixed, tmp_path / name, model, baseline=None, **kw)
        assert models["faster-whisper:base"]["decoding"] == "independent"
        assert all(r["decoded_language"] == r["language"] for r in rows), rows
        assert {r["batch_size"] for r in rows} >= ({1} if name == "one" else set())
        texts[name] = {r["id"]: r["hypothesis"] for r in rows}
        if name == "six":
            assert {r["batch_size"] for r in rows} == {6}
    assert texts["one"] == texts["six"] == texts["tuned"]
    assert len(set(texts["one"].values())) == 6
    figures = models["faster-whisper:base"]["languages"]
    assert set(figures) == {"en", "fr"} and all(f["wer_ci"] for f in figures.values())
