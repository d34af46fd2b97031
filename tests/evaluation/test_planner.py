"""The planner: budgets, heavy models alone, the guide's strategies."""

from __future__ import annotations

from core.asr.registry import load_asr_registry
from core.evaluation import runner
from core.evaluation.planner import Strategy, make_plan, pick_strategy
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
