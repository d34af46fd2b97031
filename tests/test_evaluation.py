"""Batch evaluation end to end: real worker processes, real models, generated speech."""

from __future__ import annotations

from core.asr.registry import load_asr_registry
from core.asr.tiny_models import build_wav2vec2, build_whisper
from core.evaluation import runner
from core.evaluation.config import RunConfig
from core.evaluation.guard import GuardConfig
from core.evaluation.planner import Strategy, make_plan, pick_strategy
from core.evaluation.records import read_jsonl
from core.evaluation.run_dir import SAMPLES_FILE, RunDir
from core.evaluation.tuning import BatchSizeTuner
from core.system import read_machine

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A 5-sample English set (one corrupt file) and a registry of real and tiny models."""
    from core.demo_data import make_demo_dataset

    root = tmp_path_factory.mktemp("eval")
    manifest = make_demo_dataset(root / "demo", langs=("en",), count=8)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows = [{**r, "audio_filepath": str((manifest.parent / r["audio_filepath"]).resolve())}
            for r in rows]
    corrupt = root / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage that is not audio")
    five = root / "five.jsonl"
    five.write_text("".join(json.dumps(r) + "\n" for r in rows[:4]) + json.dumps(
        {"audio_filepath": str(corrupt), "text": "this file is corrupt", "language": "en"}) + "\n")
    eight = root / "eight.jsonl"
    eight.write_text("".join(json.dumps(r) + "\n" for r in rows))
    whisper = build_whisper(root / "tiny-whisper")
    w2v = build_wav2vec2(root / "tiny-w2v")
    big = _big_wav2vec2(root / "big-w2v")
    registry = root / "asr_models.toml"
    registry.write_text(f"""
default = "faster-whisper:tiny.en"
[models."faster-whisper:tiny.en"]
source = "bundled:faster-whisper-tiny.en"
languages = ["en"]
[models."whisper:tiny-random"]
source = "{whisper}"
[models."wav2vec2:tiny-random"]
source = "{w2v}"
[models."wav2vec2:big-random"]
source = "{big}"
[models."whisper:missing"]
source = "{root / 'no-such-model'}"
memory_gb_cpu = 0.5
[batches]
first = ["faster-whisper:tiny.en", "whisper:tiny-random"]
second = ["wav2vec2:tiny-random", "whisper:missing"]
""")
    return {"root": root, "five": five, "eight": eight, "registry": registry}


def _big_wav2vec2(folder: Path) -> Path:
    """Same vocabulary as the tiny one, ~60M parameters: enough to cross a low guard limit."""
    import torch
    from transformers import Wav2Vec2ForCTC

    build_wav2vec2(folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_size=768, num_hidden_layers=8, num_attention_heads=8,
                  intermediate_size=3072)
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(Wav2Vec2ForCTC.config_class.from_dict(config))
    model.save_pretrained(folder)
    return folder


def _config(bench, tmp_path, **kw) -> RunConfig:
    defaults = dict(dataset=str(bench["five"]), out_dir=str(tmp_path / "runs"),
                    registry_path=str(bench["registry"]), use_cache=False)
    return RunConfig(**{**defaults, **kw})


def test_three_model_two_batch_run_writes_every_output(bench, tmp_path):
    config = _config(bench, tmp_path, batches=["first", "second"])
    outcome = runner.start(config)
    assert not outcome.worker_failures
    run = outcome.run_dir
    for pattern in ("batch_first_results_*.json", "batch_second_results_*.json",
                    "consolidated_results_*.json", "consolidated_detailed_*.json",
                    "memory_stats_2*.json", "run_manifest.json", "comparison_*.png"):
        assert list(run.glob(pattern)), pattern
    models = json.loads(outcome.files["consolidated"].read_text())["models"]
    detailed_file = json.loads(outcome.files["detailed"].read_text())
    detailed = detailed_file["samples"]
    consolidated = json.loads(outcome.files["consolidated"].read_text())
    assert consolidated["normalizer"] == detailed_file["normalizer"]
    assert consolidated["normalizer"]["version"] and consolidated["decoding"] == "independent"
    loaded = ["faster-whisper:tiny.en", "whisper:tiny-random", "wav2vec2:tiny-random"]
    for key in loaded:
        m = models[key]
        assert m["status"] == "ok" and m["samples"] == 5
        assert m["failures"] == 1 and m["success_rate"] == pytest.approx(0.8)
        rows = [r for r in detailed if r["model"] == key]
        assert len(rows) == 5
        bad = [r for r in rows if r["error"]]
        assert len(bad) == 1 and "audio" in bad[0]["error"] and bad[0]["hypothesis"] == ""
        assert all(r["hypothesis_norm"] is not None for r in rows if not r["error"])
    assert models["faster-whisper:tiny.en"]["wer"] < 0.5
    assert models["faster-whisper:tiny.en"]["rtfx"] > 0
    missing = models["whisper:missing"]
    assert missing["status"] == "failed" and "no-such-model" in missing["error"]
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert manifest["samples"] == 5 and manifest["machine"]["cpu_cores"] >= 1
    assert manifest["versions"]["torch"].startswith("2.")


def test_killed_run_resumes_with_every_sample_exactly_once(bench, tmp_path):
    config = _config(bench, tmp_path, dataset=str(bench["eight"]), tune_batch_size=False,
                     models=["faster-whisper:tiny.en", "wav2vec2:tiny-random"])
    config.decode.batch_size = 1
    code = ("import core, sys; from core.evaluation.config import RunConfig; "
            "from core.evaluation.runner import start; "
            f"start(RunConfig.from_dict({config.to_dict()!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True)
    samples = config.run_dir / SAMPLES_FILE
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(read_jsonl(samples)) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its worker, mid-run
    proc.wait()
    before = len(read_jsonl(samples))
    assert 3 <= before < 16, "the kill should land mid-run"
    outcome = runner.resume(config.run_dir)
    assert not outcome.worker_failures
    lines = read_jsonl(samples)
    keys = [(r["model"], r["id"]) for r in lines]
    assert len(keys) == len(set(keys)) == 16


def test_cancel_stops_after_the_current_step_and_resume_finishes(bench, tmp_path):
    """A cancel that lands while a step runs lets that step finish (all its samples are
    recorded) and starts no other; resume then does the rest, each sample once."""
    import threading

    step = 2
    config = _config(bench, tmp_path, dataset=str(bench["eight"]), tune_batch_size=False,
                     models=["faster-whisper:tiny.en"])
    config.decode.batch_size = step
    run = RunDir(config.run_dir)
    samples = config.run_dir / SAMPLES_FILE
    seen: dict[str, int] = {}

    def cancel_during_the_second_step() -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status = run.read_status()
            if status.get("phase") == "transcribing" and status.get("done", 0) >= step:
                break
            time.sleep(0.005)
        time.sleep(0.05)  # the worker has passed its cancel check: the next step is running
        seen["done"] = run.read_status()["done"]
        run.request_cancel()
        seen["recorded"] = len(read_jsonl(samples))

    watcher = threading.Thread(target=cancel_during_the_second_step, daemon=True)
    watcher.start()
    outcome = runner.start(config)
    watcher.join(timeout=10)
    assert outcome.cancelled
    # The cancel came before the running step recorded anything ...
    assert seen["recorded"] == seen["done"] and seen["done"] % step == 0, seen
    lines = read_jsonl(samples)
    # ... and that step still finished, whole, and no other step started.
    assert len(lines) == seen["done"] + step, (seen, len(lines))
    assert 0 < len(lines) < 8, "the cancel should land mid-run"
    assert len({r["id"] for r in lines}) == len(lines)
    assert all(r["error"] is None and r["hypothesis"] for r in lines)
    statuses = [m["status"] for m in run.records().model_rows()]
    assert statuses == ["cancelled"]
    before = {r["id"]: r["hypothesis"] for r in lines}

    outcome = runner.resume(config.run_dir)
    assert not outcome.cancelled and not outcome.worker_failures
    lines = read_jsonl(samples)
    ids = [r["id"] for r in lines]
    assert len(ids) == len(set(ids)) == 8  # each sample exactly once, none doubled
    assert {r["id"]: r["hypothesis"] for r in lines[:len(before)]} == before  # kept, not redone
    assert run.records().last_model_status()["faster-whisper:tiny.en"]["status"] == "ok"


def test_planner_refuses_a_model_over_budget_with_a_reason(bench, tmp_path):
    registry = load_asr_registry(bench["registry"])
    plan = make_plan([registry.get("whisper:missing"), registry.get("whisper:tiny-random")],
                     read_machine(), budget_gb=0.3)
    assert [r.model for r in plan.refused] == ["whisper:missing"]
    assert "more than the 0.3 GB budget" in plan.refused[0].reason
    assert plan.models == ["whisper:tiny-random"]
    config = _config(bench, tmp_path, models=["whisper:missing"], budget_gb=0.3)
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


def test_guard_stops_a_model_over_its_limit_and_the_run_continues(bench, tmp_path):
    config = _config(bench, tmp_path, models=["wav2vec2:big-random", "wav2vec2:tiny-random"],
                     guard=GuardConfig(limit_gb=0.1, check_interval_s=0.05))
    outcome = runner.start(config)
    models = json.loads(outcome.files["consolidated"].read_text())["models"]
    assert models["wav2vec2:big-random"]["status"] == "stopped: memory"
    assert "over its 0.10 GB limit" in models["wav2vec2:big-random"]["error"]
    assert models["wav2vec2:tiny-random"]["status"] == "ok"
    assert models["wav2vec2:tiny-random"]["samples"] == 5


def test_second_run_reuses_cached_transcripts(bench, tmp_path):
    first = runner.start(_config(bench, tmp_path, models=["wav2vec2:tiny-random"],
                                 use_cache=True))
    second = runner.start(_config(bench, tmp_path, models=["wav2vec2:tiny-random"],
                                  use_cache=True))
    rows1 = RunDir(first.run_dir).records().sample_rows()
    rows2 = RunDir(second.run_dir).records().sample_rows()
    assert all(r["cached"] for r in rows2 if not r["error"])
    assert {r["id"]: r["hypothesis"] for r in rows1} == {r["id"]: r["hypothesis"] for r in rows2}


def test_tuner_finds_the_knee_of_the_throughput_curve():
    knee = {1: 10.0, 2: 18.0, 4: 30.0, 8: 70.0, 16: 20.0}
    tuner = BatchSizeTuner(start=1, max_size=64)
    size = tuner.size
    while not tuner.settled:
        size = tuner.observe(size, knee[size], 1.0)
    assert tuner.best == 8 and size == 8
    assert [p.batch_size for p in tuner.curve] == [1, 2, 4, 8, 16]


def test_tuner_does_not_grow_past_the_memory_budget():
    tuner = BatchSizeTuner(start=1, max_size=64, budget_gb=1.0)
    tuner.observe(1, 10.0, 1.0, peak_gb=0.4)
    assert tuner.observe(2, 30.0, 1.0, peak_gb=1.5) == 1


def test_torn_last_line_is_ignored_and_repaired(tmp_path):
    path = tmp_path / SAMPLES_FILE
    path.write_text('{"model": "m", "id": "1"}\n{"model": "m", "id": "2"')
    assert [r["id"] for r in read_jsonl(path)] == ["1"]
    records = RunDir(tmp_path).records()
    records.samples.append({"model": "m", "id": "3"})
    assert [r["id"] for r in read_jsonl(path)] == ["1", "3"]


def test_cli_lists_batches_analyzes_and_monitors(tmp_path, bench):
    def ert(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, text=True,
                              capture_output=True, check=True, timeout=300).stdout

    assert "batch_1_light" in ert("evaluate", "--list-batches")
    out = ert("analyze", "--dataset", str(bench["five"]), "--batches", "batch_1_light")
    assert "strategy" in out and "batch_1_light" in out and "estimated time" in out
    out = ert("monitor", "--duration", "1.2", "--log-interval", "0.5", "--out", str(tmp_path))
    assert "RAM" in out and list(tmp_path.glob("memory_stats_*.json"))
    for command in ("evaluate", "analyze", "monitor", "demo-data"):
        assert "Example" in ert(command, "--help") or "example" in ert(command, "--help")
