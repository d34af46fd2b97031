"""The planner: budgets, heavy models alone, the guide's strategies."""

from __future__ import annotations

from core.asr.registry import load_asr_registry
from core.evaluation import run_plan, runner
from core.evaluation.config import RunConfig
from core.evaluation.planner import Plan, Strategy, make_plan, pick_strategy
from core.evaluation.run_dir import RunDir
from core.system import read_machine

import pytest


def test_planner_refuses_a_model_over_budget_with_a_reason(bench, run_config, tmp_path):
    registry = load_asr_registry(bench["registry"])
    plan = make_plan([registry.get("whisper:missing"), registry.get("whisper:tiny-random")],
                     read_machine(), budget_gb=0.3)
    assert [r.model for r in plan.refused] == ["whisper:missing"]
    assert "more than the 0.3 GB budget" in plan.refused[0].reason
    assert plan.models == ["whisper:tiny-random"]
    config = run_config(models=["whisper:missing"], budget_gb=0.3)
    with pytest.raises(runner.RunError, match="nothing fits the memory budget"):
        runner.start(config)


def test_plan_never_puts_two_heavy_models_together():
    registry = load_asr_registry()
    specs = [registry.get(k) for k in ("whisper:large", "whisper:large-v3", "whisper:tiny",
                                       "whisper:base")]
    plan = make_plan(specs, read_machine(), budget_gb=20.0)
    for batch in plan.batches:
        heavy = [m for m in batch.models if "large" in m]
        assert len(heavy) <= 1, batch
        assert batch.need_gb <= 20.0 and batch.reason


def test_strategy_follows_the_guide_thresholds():
    assert pick_strategy(20) is Strategy.AGGRESSIVE
    assert pick_strategy(10) is Strategy.MODERATE
    assert pick_strategy(6) is Strategy.CONSERVATIVE


def _measurement(peak: float, retained: float | None = None, rtfx: float | None = None,
                 clip: float | None = 5.0):
    from core.evaluation.measurements import Measurement

    import time

    return Measurement(device="cpu", dtype="float32", batch_size=4, clip_seconds=clip,
                       peak_gb=peak, retained_gb=retained, peak_gpu_gb=None, rtfx=rtfx,
                       load_seconds=2.0, measured=time.time())


def _fp32_cpu(monkeypatch):
    from core import system

    monkeypatch.setattr(system, "cpu_flags", lambda: frozenset({"avx2"}))


def test_measured_needs_replace_estimates_and_say_so(tmp_path, monkeypatch):
    from core.asr.spec import AsrModelSpec
    from core.evaluation.measurements import MeasurementStore

    _fp32_cpu(monkeypatch)
    spec = AsrModelSpec("whisper:m", "org/whisper-medium", params_millions=769)
    store = MeasurementStore(tmp_path / "m.sqlite")
    machine = read_machine()
    estimated = make_plan([spec], machine, budget_gb=20).batches[0].needs[0]
    assert estimated.source == "estimated"
    store.add(spec, _measurement(peak=2.5, rtfx=4.0))
    measured = make_plan([spec], machine, budget_gb=20, measured=store,
                         audio_seconds=40.0).batches[0].needs[0]
    assert measured.need_gb == 2.5 and measured.source.startswith("measured 20")
    assert measured.need_gb != estimated.need_gb
    assert measured.seconds == pytest.approx(2.0 + 40.0 / 4.0)  # load + audio / RTFx
    assert measured.seconds_source.startswith("measured")
    # Clips much longer than those measured: the measurement does not speak for them.
    longer = make_plan([spec], machine, budget_gb=20, measured=store, clip_seconds=30.0)
    assert longer.batches[0].needs[0].source == "estimated"


def test_packing_counts_what_each_model_leaves_behind(tmp_path, monkeypatch):
    from core.asr.spec import AsrModelSpec
    from core.evaluation.measurements import MeasurementStore

    _fp32_cpu(monkeypatch)
    specs = [AsrModelSpec(f"whisper:{n}", f"org/whisper-{n}", memory_gb_cpu=None,
                          params_millions=200) for n in ("a", "b", "c", "d")]
    machine = read_machine()
    store = MeasurementStore(tmp_path / "m.sqlite")
    for spec in specs:
        store.add(spec, _measurement(peak=3.0))  # retained unknown: as if nothing were freed
    kept_all = make_plan(specs, machine, budget_gb=10.0, measured=store)
    assert len(kept_all.batches) == 2  # 4 × 3 GB > 10: "even if nothing were freed"
    store = MeasurementStore(tmp_path / "m2.sqlite")
    for spec in specs:
        store.add(spec, _measurement(peak=3.0, retained=0.25))
    freed = make_plan(specs, machine, budget_gb=10.0, measured=store)
    assert len(freed.batches) == 1
    assert freed.batches[0].need_gb == pytest.approx(3 * 0.25 + 3.0)
    assert "leaves behind" in freed.batches[0].reason


@pytest.mark.slow
def test_a_run_records_what_the_next_plan_uses(tmp_path, monkeypatch):
    from core.demo_data import make_demo_dataset

    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))
    manifest = make_demo_dataset(tmp_path / "demo", langs=("en",), count=2)
    config = RunConfig(dataset=str(manifest), models=["faster-whisper:tiny.en"],
                       out_dir=str(tmp_path / "runs"), use_cache=False)
    before = run_plan.plan_run(config).batches[0].needs[0]
    assert before.source == "estimated"
    outcome = runner.start(config)
    run = RunDir(outcome.run_dir)
    summary = run.read_summaries()["faster-whisper:tiny.en"]
    planned = run.read_plan().batches[0].needs[0]
    assert summary.predicted_gb == pytest.approx(planned.need_gb, abs=1e-3)
    assert planned.need_gb < before.need_gb  # the run's plan knew its clips are short
    assert summary.measured_gb is not None and summary.measured_gb > 0
    after = run_plan.plan_run(RunConfig(dataset=str(manifest), models=["faster-whisper:tiny.en"],
                                        out_dir=str(tmp_path / "runs"))).batches[0].needs[0]
    assert after.source.startswith("measured") and after.need_gb == summary.measured_gb
    assert after.seconds_source.startswith("measured")


TINY = ["faster-whisper:tiny.en"]


def _without_durations(manifest, folder):
    """A copy of ``manifest`` with its ``duration`` fields removed (the field is optional)."""
    import json

    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    out = folder / f"{manifest.stem}-no-durations.jsonl"
    out.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "duration"}) + "\n"
                           for r in rows))
    return out


def test_a_manifest_without_durations_plans_like_one_with_them(bench, run_config, tmp_path,
                                                               monkeypatch):
    from core.datasets import load_dataset_spec

    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))  # no other test's figures
    given = run_plan.plan_samples(run_config(dataset=str(bench["eight"]), models=TINY), None,
                                  load_dataset_spec(str(bench["eight"])))
    bare = _without_durations(bench["eight"], tmp_path)
    run = RunDir(runner.prepare(run_config(dataset=str(bare), models=TINY)))
    read, manifest = run.read_plan(), run.read_manifest()
    assert given.durations == "given by the dataset"
    assert read.durations == "read from audio headers for 8 of 8 samples"
    assert "(clip durations read from audio headers for 8 of 8 samples)" in read.describe()
    given_seconds = sum(s.duration for s in load_dataset_spec(str(bench["eight"])))
    assert manifest["audio_seconds"] == pytest.approx(given_seconds, abs=0.05)
    assert read.estimated_seconds == pytest.approx(given.estimated_seconds, rel=0.01)
    assert [b.need_gb for b in read.batches] == pytest.approx([b.need_gb for b in given.batches],
                                                              rel=1e-3)  # 3 decimals given
    assert not read.warnings


def test_the_plan_names_files_whose_duration_cannot_be_read(bench, run_config, tmp_path,
                                                            monkeypatch):
    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))
    plan = RunDir(runner.prepare(run_config(models=TINY))).read_plan()  # four clips and corrupt.wav
    assert plan.durations == "given by the dataset for 4 of 5 samples (1 unknown)"
    assert ("1 file whose duration could not be read: corrupt.wav (not counted in the time "
            "estimate)") in plan.warnings


def test_where_durations_came_from_survives_the_plan_file_and_older_plans_load():
    from core.evaluation.planner import Plan

    plan = Plan("cpu", 4.0, 5.0, Strategy.CONSERVATIVE, durations="given by the dataset")
    assert Plan.from_dict(plan.to_dict()).durations == "given by the dataset"
    older = {k: v for k, v in plan.to_dict().items() if k != "durations"}
    assert Plan.from_dict(older).durations is None
    assert "clip durations" not in Plan.from_dict(older).describe()


@pytest.mark.slow
def test_planned_time_of_a_manifest_without_durations_is_close_to_the_run(
        bench, tmp_path, monkeypatch):
    """The acceptance test of durations read from headers: the second run's plan (the
    first measured this machine) is within 0.5–1.5× of the run's wall time."""
    import time

    # Our own measurements: another test's figures for tiny.en would change the estimate.
    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))
    bare = _without_durations(bench["eight"], tmp_path)

    def run() -> tuple[float, float]:
        config = RunConfig(dataset=str(bare), models=["faster-whisper:tiny.en"],
                           registry_path=str(bench["registry"]), out_dir=str(tmp_path / "runs"),
                           use_cache=False)
        began = time.perf_counter()
        outcome = runner.start(config)
        wall = time.perf_counter() - began
        assert not outcome.worker_failures
        return outcome.plan.estimated_seconds, wall

    first, _ = run()  # records this machine's speed and load time for tiny.en
    planned, wall = run()
    # The wall time of the whole start() call, what "estimated time" promises the user; it
    # also holds the worker's start (imports) and the scoring, which the plan does not
    # count, so the ratio sits under 1 (0.75–1.0 here), well inside the band. Without the
    # durations the plan would be the load time alone (~1 s of ~10 s).
    print(f"planned {first:.1f} s, then {planned:.1f} s; the second run took {wall:.1f} s")
    assert 0.5 * wall <= planned <= 1.5 * wall


def test_a_models_memory_is_one_figure_in_the_picker_the_plan_and_its_reason(
        tmp_path, monkeypatch):
    """Issue 27: tiny.en showed 0.6 GB in the picker, 0.36 in the plan, 0.4 in its reason."""
    from core.evaluation.measurements import MeasurementStore
    from core.evaluation.planner import format_gb, model_needs

    import dataclasses

    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing downloaded
    registry = load_asr_registry()
    tiny_en, tiny = registry.get("faster-whisper:tiny.en"), registry.get("whisper:tiny")
    store = MeasurementStore()
    store.add(tiny_en, dataclasses.replace(_measurement(peak=0.3612), dtype="int8"))
    store.close()
    picker = model_needs([tiny_en, tiny], "cpu", clip_seconds=4.0, budget_gb=10.0)
    assert picker["faster-whisper:tiny.en"].option().startswith(
        "faster-whisper:tiny.en · 0.36 GB (measured ")
    assert picker["whisper:tiny"].missing.startswith("needs a download: ")
    for spec in (tiny_en, tiny):
        plan = make_plan([spec], read_machine(), budget_gb=10.0, clip_seconds=4.0,
                         measured=MeasurementStore())
        (need,) = plan.batches[0].needs
        assert need.option() == picker[spec.key].option()
        assert plan.batches[0].reason.startswith(f"{format_gb(need.need_gb)} of ")
        assert f"{spec.key}: {format_gb(need.need_gb)} (" in plan.describe()


def test_a_plan_over_conditions_says_it_multiplies_every_clip():
    plan = Plan("cpu", 4.0, 5.0, Strategy.CONSERVATIVE, [], conditions=["clean", "telephone"])
    assert "every clip × 2 conditions (clean, telephone)" in plan.describe()
    assert Plan.from_dict(plan.to_dict()).conditions == ["clean", "telephone"]
    assert "condition" not in Plan("cpu", 4.0, 5.0, Strategy.CONSERVATIVE, []).describe()
