"""Runs end to end: real worker processes, real models, generated speech; kill, cancel,
resume, cache, guard."""

from __future__ import annotations

from core.evaluation import executors, runner, worker_processes
from core.evaluation.memory_guard import GuardConfig
from core.evaluation.records import read_jsonl
from core.evaluation.run_dir import SAMPLES_FILE, RunDir

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.evaluation.conftest import kill_mid_run


def test_three_model_two_batch_run_writes_every_output(bench, run_config, tmp_path):
    config = run_config(batches=["first", "second"])
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


def test_killed_run_resumes_each_sample_once_and_lists_both_parts(bench, run_config, tmp_path):
    """A SIGKILL mid-model, then --resume: every sample once, and the killed part is not
    lost: the manifest lists both parts (the killed one with its load time, peak and
    samples from its checkpoint), the results say "resumed (2 parts)", load time is summed
    over the parts, compute over every timed clip, peaks maxed."""
    config = run_config(dataset=str(bench["eight"]), tune_batch_size=False,
                     models=["faster-whisper:tiny.en", "wav2vec2:tiny-random"])
    config.decode.batch_size = 1
    before = kill_mid_run(config, checkpointed=True)  # the killed part has counted samples
    samples = config.run_dir / SAMPLES_FILE
    assert 3 <= before < 16, "the kill should land mid-run"
    outcome = runner.resume(config.run_dir)
    assert not outcome.worker_failures
    lines = read_jsonl(samples)
    keys = [(r["model"], r["id"]) for r in lines]
    assert len(keys) == len(set(keys)) == 16

    from core.evaluation.summary import status_label

    manifest = json.loads((config.run_dir / "run_manifest.json").read_text())
    parts = [p for p in manifest["parts"] if p["model"] == "faster-whisper:tiny.en"]
    assert [p["status"] for p in parts] == ["killed", "ok"]
    killed, second = parts
    assert killed["load_seconds"] > 0 and killed["peak_rss_gb"] > 0
    assert 1 <= killed["samples_done"] <= before and killed["started"] < killed["ended"]
    assert killed["ended"] <= second["started"]
    summary = RunDir(config.run_dir).read_summaries()["faster-whisper:tiny.en"]
    assert summary.parts == 2 and summary.resumed
    assert status_label(summary) == "ok · resumed (2 parts)"
    assert summary.load_seconds == pytest.approx(killed["load_seconds"] + second["load_seconds"])
    assert summary.peak_rss_gb == max(killed["peak_rss_gb"], second["peak_rss_gb"])
    timed = [r for r in lines if r["model"] == "faster-whisper:tiny.en" and not r["error"]]
    assert summary.compute_seconds == pytest.approx(sum(r["time"] for r in timed), abs=1e-3)
    assert summary.timed == len(timed) == 8  # the killed part's clips are timed too
    assert summary.actual_seconds >= (killed["ended"] - killed["started"]
                                      + second["ended"] - second["started"]) - 1e-3
    assert not RunDir(config.run_dir).read_summaries()["wav2vec2:tiny-random"].resumed


def test_cancel_stops_after_the_current_step_and_resume_finishes(bench, run_config, tmp_path):
    """A cancel that lands while a step runs lets that step finish (all its samples are
    recorded) and starts no other; resume then does the rest, each sample once."""
    import threading

    step = 2
    config = run_config(dataset=str(bench["eight"]), tune_batch_size=False,
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


def test_guard_stops_a_model_over_its_limit_and_the_run_continues(bench, run_config, tmp_path):
    config = run_config(models=["wav2vec2:big-random", "wav2vec2:tiny-random"],
                     guard=GuardConfig(limit_gb=0.1, check_interval_s=0.05))
    outcome = runner.start(config)
    models = json.loads(outcome.files["consolidated"].read_text())["models"]
    assert models["wav2vec2:big-random"]["status"] == "stopped: memory"
    assert "over its 0.10 GB limit" in models["wav2vec2:big-random"]["error"]
    assert models["wav2vec2:tiny-random"]["status"] == "ok"
    assert models["wav2vec2:tiny-random"]["samples"] == 5


def test_second_run_reuses_cached_transcripts(bench, run_config, tmp_path):
    first = runner.start(run_config(models=["wav2vec2:tiny-random"],
                                 use_cache=True))
    second = runner.start(run_config(models=["wav2vec2:tiny-random"],
                                  use_cache=True))
    rows1 = RunDir(first.run_dir).records().sample_rows()
    rows2 = RunDir(second.run_dir).records().sample_rows()
    assert all(r["cached"] for r in rows2 if not r["error"])
    assert {r["id"]: r["hypothesis"] for r in rows1} == {r["id"]: r["hypothesis"] for r in rows2}


def test_worker_process_ends_without_tearing_its_modules_down(bench, run_config):
    """A worker's batch done and recorded, its process ends at once (interpreter teardown
    skipped: no exit handler runs), with exit code 0 and nothing lost."""
    run = RunDir(runner.prepare(run_config(models=["whisper:tiny-random"])))
    batch = run.read_plan().batches[0].name
    code = ("import atexit, runpy, sys\n"
            "atexit.register(lambda: print('torn down', flush=True))\n"
            f"sys.argv = ['worker', {str(run.path)!r}, {batch!r}]\n"
            "runpy.run_module('core.evaluation.worker', run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "torn down" not in done.stdout
    rows = run.records().sample_rows()
    assert sorted(r["id"] for r in rows) == sorted(run.read_manifest()["sample_ids"])
    assert run.records().last_model_status()["whisper:tiny-random"]["status"] == "ok"


def _watch_starts(monkeypatch) -> list[tuple[str, str, float]]:
    """Record when each batch's workers start (held or not) and are let go."""
    events: list[tuple[str, str, float]] = []
    start, go = worker_processes.start_workers, worker_processes.Workers.go

    def watched_start(run, batch, parts, claims, held=False):
        events.append(("held" if held else "started", batch, time.time()))
        return start(run, batch, parts, claims, held)

    def watched_go(self):
        events.append(("go", self.batch, time.time()))
        go(self)

    monkeypatch.setattr(worker_processes, "start_workers", watched_start)
    monkeypatch.setattr(worker_processes.Workers, "go", watched_go)
    return events


def test_next_batch_starts_ahead_and_waits_for_its_turn(bench, run_config, monkeypatch):
    """With workers started ahead (GPU runs; forced here), the second batch's worker is
    started once the first batch's has loaded, runs only once the first has ended, and the
    run's records are those of a run without it: every (model, sample) once."""
    monkeypatch.setattr(executors, "starts_ahead", lambda config: True)
    events = _watch_starts(monkeypatch)
    outcome = runner.start(run_config(batches=["first", "second"]))
    assert not outcome.worker_failures
    assert [(kind, batch) for kind, batch, _ in events] == [
        ("started", "first"), ("go", "first"), ("held", "second"), ("go", "second")]
    run = RunDir(outcome.run_dir)
    first = [m for m in run.records().model_rows() if m["batch"] == "first"]
    held_at = events[2][2]
    assert held_at >= first[0]["started"] + first[0]["load_seconds"]  # not during its load
    first_ended = max(m["ended"] for m in first)
    second_began = min(m["started"] for m in run.records().model_rows()
                       if m["batch"] == "second")
    assert second_began >= first_ended  # held until then, though started long before
    keys = [(r["model"], r["id"]) for r in run.records().sample_rows()]
    raw = read_jsonl(outcome.run_dir / SAMPLES_FILE)
    assert len(raw) == len(keys) == len(set(keys)) == 3 * 5  # whisper:missing failed to load
    statuses = run.records().last_model_status()
    assert statuses["wav2vec2:tiny-random"]["status"] == "ok"
    assert statuses["whisper:missing"]["status"] == "failed"


def test_a_cancel_ends_the_held_workers_without_running_them(bench, run_config, monkeypatch):
    monkeypatch.setattr(executors, "starts_ahead", lambda config: True)
    events = _watch_starts(monkeypatch)
    held: list[worker_processes.Workers] = []
    real_run_to_end = worker_processes.run_to_end

    def cancel_after_the_first(run, workers, waiting, start_next):
        failures, notes, upcoming = real_run_to_end(run, workers, waiting, start_next)
        held.append(upcoming)
        run.request_cancel()
        return failures, notes, upcoming

    monkeypatch.setattr(worker_processes, "run_to_end", cancel_after_the_first)
    outcome = runner.start(run_config(batches=["first", "second"]))
    assert outcome.cancelled
    assert ("go", "second") not in [(kind, batch) for kind, batch, _ in events]
    # ended (on the closed pipe, or stopped mid-import), having run nothing
    assert [proc.returncode in (0, -signal.SIGTERM) for proc in held[0].procs] == [True]
    models = {r["model"] for r in RunDir(outcome.run_dir).records().sample_rows()}
    assert models == {"faster-whisper:tiny.en", "whisper:tiny-random"}  # the first batch's


def test_workers_keep_bytecode_in_erts_cache_where_the_environment_writes_none(
        bench, run_config, monkeypatch, tmp_path):
    """On an image that writes no bytecode each worker would compile torch and transformers
    from source (13–15 s of a GPU worker's start there): the runner gives its workers ERT's
    bytecode cache, which the first fills."""
    import transformers.models.whisper.modeling_whisper as whisper

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))
    outcome = runner.start(run_config(models=["whisper:tiny-random"]))
    assert not outcome.worker_failures
    source = Path(whisper.__file__).resolve()
    cached = (tmp_path / "cache" / "pycache" / source.relative_to("/").parent
              / Path(importlib.util.cache_from_source(str(source))).name)
    assert cached.is_file()  # written by the worker: this process imported it long before


def test_a_batch_is_written_to_the_log_and_the_cache_in_one_flush_each(
        bench, run_config, monkeypatch, tmp_path):
    """A line and a cache entry each flushed to disk cost 0.23 and 0.25 ms here, 64 of each
    per GPU batch with the GPU waiting; a batch's (its audio failure included) go together."""
    from core.evaluation import cache as cache_module
    from core.evaluation.worker import run_batch

    config = run_config(models=["whisper:tiny-random"], tune_batch_size=False,
                        use_cache=True)
    config.decode.batch_size = 5  # the five samples in one step
    run = RunDir(runner.prepare(config))
    monkeypatch.setattr(cache_module.paths, "cache_dir", lambda *parts: tmp_path)
    log_flushes: list[str] = []
    cache_writes: list[int] = []
    fsync, put_many = os.fsync, cache_module.TranscriptCache.put_many

    def counted_fsync(fd: int) -> None:
        log_flushes.append(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        fsync(fd)

    def counted_put_many(cache, items):
        items = list(items)
        cache_writes.append(len(items))
        put_many(cache, items)

    monkeypatch.setattr(os, "fsync", counted_fsync)
    monkeypatch.setattr(cache_module.TranscriptCache, "put_many", counted_put_many)
    assert run_batch(run.path, run.read_plan().batches[0].name) == 0
    assert log_flushes.count(SAMPLES_FILE) == 1
    assert cache_writes == [4]  # one transaction: the four readable clips
    rows = run.records().sample_rows()
    assert len(rows) == 5 and sum(bool(r["error"]) for r in rows) == 1
