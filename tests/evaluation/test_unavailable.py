"""A model that is not on this machine: known before the run, failed in seconds during it."""

from __future__ import annotations

from core.evaluation import run_plan, run_progress, runner
from core.evaluation.config import RunConfig
from core.evaluation.run_dir import RunDir

import socket

from tests.conftest import TINY_EN_REGISTRY


def test_a_hub_model_not_on_this_machine_fails_in_seconds_with_its_reason_first(
        tmp_path, monkeypatch):
    """No route to the hub (simulated: an endpoint that accepts connections and never
    answers), HF_HUB_OFFLINE unset: the hub client alone would wait ~140 s (its retries)."""
    from core.demo_data import make_demo_dataset

    manifest = make_demo_dataset(tmp_path / "demo", langs=("en",), count=2)
    registry = tmp_path / "asr_models.toml"
    registry.write_text(TINY_EN_REGISTRY + '[models."whisper:tiny"]\n'
                                           'source = "openai/whisper-tiny"\n')
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))  # empty
    config = RunConfig(dataset=str(manifest), models=["whisper:tiny"], use_cache=False,
                       registry_path=str(registry), out_dir=str(tmp_path / "runs"))
    plan = run_plan.plan_run(config, audio_seconds=4.0)  # before anything runs
    (need,) = plan.batches[0].needs
    assert need.missing and need.missing.startswith("needs a download: ")
    assert any("whisper:tiny (needs a download: " in w for w in plan.warnings)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        outcome = runner.start(config)
    (turn,) = RunDir(outcome.run_dir).records().turns()
    assert turn["status"] == "failed"
    assert turn["ended"] - turn["started"] < 8, turn  # the worker's own record of the turn
    (row,) = run_progress.progress_rows(run_progress.progress_of(outcome.run_dir))
    assert list(row)[:2] == ["model", "status"]
    assert row["status"].startswith(
        "failed: openai/whisper-tiny is not on this machine: not in the local cache, and the "
        "hub is unreachable (http://127.0.0.1:"), row
    assert "did not answer within 3 s); it needs a download of " in row["status"]
