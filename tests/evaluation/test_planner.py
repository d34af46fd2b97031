"""The planner: budgets, heavy models alone, the guide's strategies."""

from __future__ import annotations

from core.asr.registry import load_asr_registry
from core.evaluation import runner
from core.evaluation.config import RunConfig
from core.evaluation.planner import Strategy, make_plan, pick_strategy
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
    before = runner.plan_run(config).batches[0].needs[0]
    assert before.source == "estimated"
    outcome = runner.start(config)
    run = RunDir(outcome.run_dir)
    summary = run.read_summaries()["faster-whisper:tiny.en"]
    planned = run.read_plan().batches[0].needs[0]
    assert summary.predicted_gb == pytest.approx(planned.need_gb, abs=1e-3)
    assert planned.need_gb < before.need_gb  # the run's plan knew its clips are short
    assert summary.measured_gb is not None and summary.measured_gb > 0
    after = runner.plan_run(RunConfig(dataset=str(manifest), models=["faster-whisper:tiny.en"],
                                      out_dir=str(tmp_path / "runs"))).batches[0].needs[0]
    assert after.source.startswith("measured") and after.need_gb == summary.measured_gb
    assert after.seconds_source.startswith("measured")
