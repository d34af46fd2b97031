"""Speed figures mean what they say: checked against a backend whose costs are known sleeps,
on partly and fully cached runs, and on a run resumed after a cancel."""

from __future__ import annotations

from core.asr import factory
from core.evaluation import runner
from core.evaluation.config import RunConfig
from core.evaluation.run_dir import RunDir
from core.evaluation.summary import speed_label
from core.evaluation.worker import run_batch

import json

import pytest

from tests.evaluation import sleepy


@pytest.fixture
def sleepy_setup(tmp_path, monkeypatch):
    """Six demo clips (3 en, 3 fr), a registry with the sleeping backend, a private cache."""
    from core.demo_data import make_demo_dataset

    monkeypatch.setitem(factory.BACKENDS, "sleepy", sleepy.SLEEPY)
    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sleepy.SleepBackend, "batches", 0)
    manifest = make_demo_dataset(tmp_path / "demo", langs=("en", "fr"), count=3)
    rows = manifest.read_text().splitlines()
    half = tmp_path / "demo" / "half.jsonl"  # the first three clips of the same set
    half.write_text("\n".join(rows[:3]) + "\n")
    registry = tmp_path / "asr_models.toml"
    registry.write_text('[models."sleepy:test"]\nsource = "nowhere"\nbackend = "sleepy"\n')
    return {"all": manifest, "half": half, "registry": registry, "out": tmp_path / "runs"}


def _run_in_process(setup, dataset, **kw) -> RunDir:
    """Plan with the real runner, run the batch in this process (so the test's backend is
    registered), and write the results."""
    config = RunConfig(dataset=str(dataset), models=["sleepy:test"], out_dir=str(setup["out"]),
                       registry_path=str(setup["registry"]), **kw)
    run = RunDir(runner.prepare(config))
    for batch in run.read_plan().batches:
        run_batch(run.path, batch.name)
    runner.rescore(run.path)
    return run


def test_speed_figures_follow_their_definitions(sleepy_setup):
    run = _run_in_process(sleepy_setup, sleepy_setup["all"], use_cache=False,
                          tune_batch_size=False, decode=_batch(2))
    m = run.read_summaries()["sleepy:test"]
    rows = run.records().sample_rows()
    audio = sum(r["duration"] for r in rows)
    batches = len({r["latency"] for r in rows})  # the clips of one batch share their latency
    compute = batches * sleepy.BATCH_SECONDS + sleepy.SECONDS_PER_AUDIO_SECOND * audio
    assert m.timed == 6 and m.cached == 0
    assert m.rtfx == pytest.approx(audio / compute, rel=0.1)
    assert m.rtfx < 1 / sleepy.SECONDS_PER_AUDIO_SECOND
    assert m.mean_compute_s == pytest.approx(compute / 6, rel=0.1)
    # Model load counts end to end, and only there.
    assert m.load_seconds == pytest.approx(sleepy.LOAD_SECONDS, abs=0.1)
    decoding = sum(r["decode_seconds"] for r in rows)
    assert m.rtfx_end_to_end == pytest.approx(
        audio / (sleepy.LOAD_SECONDS + decoding + compute), rel=0.1)
    # A clip waits for its whole batch (two clips): latency is about twice its compute share.
    assert m.mean_latency_s == pytest.approx(compute / batches, rel=0.15)
    assert m.mean_latency_s > 1.5 * m.mean_compute_s
    manifest = run.read_manifest()
    assert set(manifest["speed_definitions"]) >= {"rtfx", "rtfx_end_to_end", "mean_compute_s",
                                                  "mean_latency_s"}


def test_partly_and_fully_cached_runs_say_what_speed_rests_on(sleepy_setup):
    first = _run_in_process(sleepy_setup, sleepy_setup["half"])  # caches three clips
    measured = first.read_summaries()["sleepy:test"].rtfx
    partly = _run_in_process(sleepy_setup, sleepy_setup["all"])
    m = partly.read_summaries()["sleepy:test"]
    assert (m.timed, m.cached, m.failures) == (3, 3, 0)
    assert m.rtfx is not None and speed_label(m).endswith("on 3 of 6 clips")
    timed = [r for r in partly.records().sample_rows() if not r["cached"]]
    assert m.rtfx == pytest.approx(sum(r["duration"] for r in timed) /
                                   sum(r["time"] for r in timed))
    full = _run_in_process(sleepy_setup, sleepy_setup["all"])
    m = full.read_summaries()["sleepy:test"]
    assert (m.timed, m.cached) == (0, 6)
    assert m.rtfx is None and m.rtfx_end_to_end is None and m.batch_size is None
    assert m.rtfx_when_cached == pytest.approx(measured, rel=0.35)  # made by two runs
    assert speed_label(m).startswith("— (all cached, ")
    consolidated = json.loads(full.latest("consolidated_results").read_text())
    assert consolidated["models"]["sleepy:test"]["rtfx"] is None  # null, never 0


def test_the_tuner_starts_where_it_settled_last_time(sleepy_setup):
    from core.asr.base import DecodeOptions
    from core.asr.registry import load_asr_registry
    from core.evaluation.cache import TranscriptCache, tuning_key

    first = _run_in_process(sleepy_setup, sleepy_setup["all"], max_batch_size=4)
    assert first.read_summaries()["sleepy:test"].batch_curve[0]["batch_size"] == 1
    spec = load_asr_registry(sleepy_setup["registry"]).get("sleepy:test")
    remembered = TranscriptCache().batch_size(tuning_key(spec, "cpu", "remote"))
    assert remembered and remembered > 1
    # Other decoding options: nothing cached, but the same model and device.
    again = _run_in_process(sleepy_setup, sleepy_setup["all"], max_batch_size=4,
                            decode=DecodeOptions(beam_size=2))
    rows = again.records().sample_rows()
    assert not any(r["cached"] for r in rows)
    assert rows[0]["batch_size"] == remembered
    # --no-cache reads no transcript but keeps the remembered size; --retune measures afresh.
    kept = _run_in_process(sleepy_setup, sleepy_setup["half"], max_batch_size=4,
                           use_cache=False).records().sample_rows()
    assert kept[0]["batch_size"] == remembered and not any(r["cached"] for r in kept)
    fresh = _run_in_process(sleepy_setup, sleepy_setup["half"], max_batch_size=4,
                            use_cache=False, retune=True).records().sample_rows()
    assert fresh[0]["batch_size"] == 1


def test_resumed_run_summary_is_the_aggregate_of_its_parts(sleepy_setup, monkeypatch):
    setup = sleepy_setup
    config = RunConfig(dataset=str(setup["all"]), models=["sleepy:test"],
                       out_dir=str(setup["out"]), registry_path=str(setup["registry"]),
                       use_cache=False, tune_batch_size=True, max_batch_size=2)
    run = RunDir(runner.prepare(config))
    monkeypatch.setenv("ERT_SLEEPY_RUN", str(run.path))
    monkeypatch.setenv("ERT_SLEEPY_CANCEL_AFTER", "2")  # cancel during the first part
    batch = run.read_plan().batches[0].name
    run_batch(run.path, batch)
    first_part = run.records().model_rows()
    assert [p["status"] for p in first_part] == ["cancelled"]
    assert 0 < len(run.records().sample_rows()) < 6
    run.clear_cancel()
    monkeypatch.delenv("ERT_SLEEPY_CANCEL_AFTER")
    run_batch(run.path, batch)  # the resume
    runner.rescore(run.path)
    parts = run.records().model_rows()
    m = run.read_summaries()["sleepy:test"]
    assert m.parts == len(parts) == 2 and m.status == "ok" and m.samples == 6
    assert m.load_seconds == pytest.approx(sum(p["load_seconds"] for p in parts))
    assert m.peak_rss_gb == max(p["peak_rss_gb"] for p in parts)
    assert [{k: v for k, v in point.items() if k != "part"} for point in m.batch_curve] == \
        [point for p in parts for point in p["batch_curve"]]
    assert {point["part"] for point in m.batch_curve} == {1, 2}
    assert [p["status"] for p in run.read_manifest()["parts"]] == ["cancelled", "ok"]


def _batch(size: int):
    from core.asr.base import DecodeOptions

    return DecodeOptions(batch_size=size)
