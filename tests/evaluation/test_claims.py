"""Data-parallel workers share samples as they go: each chunk to one worker, the late
worker's part done by the others, a restarted worker's claims given back to it."""

from __future__ import annotations

from core.asr import factory
from core.evaluation import claims as claims_module
from core.evaluation import runner
from core.evaluation.claims import Claims, chunk_size
from core.evaluation.config import RunConfig
from core.evaluation.run_dir import RunDir
from core.evaluation.shards import Shard
from core.evaluation.worker import run_batch

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.evaluation import sleepy


def _claim_all(folder: str, index: int, count: int, items: int, out: multiprocessing.Queue,
               go: Any) -> None:
    go.wait()
    taken = [item for chunk in Claims(Path(folder), index, count).chunks(list(range(items)))
             for item in chunk]
    out.put((index, taken))


def test_each_chunk_goes_to_one_worker_when_they_race_for_all(tmp_path) -> None:
    """Four processes, let go at once, each try to take every chunk of 20,000 items."""
    context = multiprocessing.get_context("fork")
    out, go = context.Queue(), context.Event()
    procs = [context.Process(target=_claim_all, args=(str(tmp_path), i, 4, 20_000, out, go))
             for i in range(4)]
    for proc in procs:
        proc.start()
    go.set()
    taken = dict(out.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
    everything = [item for items in taken.values() for item in items]
    assert sorted(everything) == list(range(20_000))  # all of them, none twice


def test_a_worker_takes_its_own_chunks_first_then_the_others_from_the_end(tmp_path) -> None:
    mine = Claims(tmp_path, 1, 3)
    assert mine.order(8) == [1, 4, 7, 6, 5, 3, 2, 0]
    items = list(range(32))  # 32 items over 3 workers: chunks of 2
    assert chunk_size(len(items), 3) == 2
    first = next(Claims(tmp_path, 1, 3).chunks(items))
    assert first == [2, 3]  # chunk 1
    other = Claims(tmp_path, 0, 3)
    got = [chunk[0] // 2 for chunk in other.chunks(items)]
    assert 1 not in got and sorted(got) == [c for c in range(16) if c != 1]
    assert got[:6] == [0, 3, 6, 9, 12, 15]  # its own, then the others' from the last
    assert got[6:8] == [14, 13]


def test_a_worker_restarted_under_its_index_takes_back_what_it_had_claimed(tmp_path) -> None:
    items = list(range(40))
    before = Claims(tmp_path, 0, 2).chunks(items)
    held = [next(before), next(before)]  # claimed, then the worker died
    again = [chunk for chunk in Claims(tmp_path, 0, 2).chunks(items)]
    assert held[0] in again and held[1] in again
    assert not any(chunk in held for chunk in Claims(tmp_path, 1, 2).chunks(items))


def test_chunks_shrink_so_that_a_small_dataset_still_spreads() -> None:
    assert chunk_size(15_360, 4) == claims_module.CHUNK_SIZE
    assert chunk_size(8, 2) == 1
    assert chunk_size(1, 4) == 1


def test_without_hard_links_the_runner_deals_the_samples_out(tmp_path, monkeypatch) -> None:
    run = RunDir(tmp_path / "run")
    assert run.new_claims("b") is not None

    def no_links(*_args: object) -> None:
        raise PermissionError("links not supported here")

    monkeypatch.setattr(claims_module.os, "link", no_links)
    assert run.new_claims("b") is None


@pytest.fixture
def sleepy_run(tmp_path, monkeypatch):
    """A run of the sleeping backend over 24 short demo clips (English and French)."""
    from core.demo_data import make_demo_dataset

    monkeypatch.setitem(factory.BACKENDS, "sleepy", sleepy.SLEEPY)
    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))
    manifest = make_demo_dataset(tmp_path / "demo", langs=("en", "fr"), count=12)
    registry = tmp_path / "asr_models.toml"
    registry.write_text('[models."sleepy:test"]\nsource = "nowhere"\nbackend = "sleepy"\n'
                        'languages = ["en", "fr"]\n')
    config = RunConfig(dataset=str(manifest), models=["sleepy:test"],
                       out_dir=str(tmp_path / "runs"), registry_path=str(registry),
                       use_cache=False, tune_batch_size=False, devices=["cpu", "cpu"])
    config.decode.batch_size = 2
    return RunDir(runner.prepare(config))


def test_a_worker_that_loads_late_leaves_its_part_to_the_other(sleepy_run, monkeypatch
                                                               ) -> None:
    """Two workers sharing one model's samples, one of them 5 s late to load: the prompt one
    does most of the work instead of waiting for the late one's half."""
    real_load = sleepy.SleepBackend._load

    def load(self: sleepy.SleepBackend) -> None:
        if threading.current_thread().name == "late":
            time.sleep(5.0)
        real_load(self)

    monkeypatch.setattr(sleepy.SleepBackend, "_load", load)
    batch = sleepy_run.read_plan().batches[0].name
    folder = sleepy_run.new_claims(batch)
    assert folder is not None
    threads = [threading.Thread(target=run_batch, name=name,
                                args=(sleepy_run.path, batch, Shard(i, 2, "cpu"), folder))
               for i, name in enumerate(["prompt", "late"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    rows = sleepy_run.records().sample_rows()
    assert sorted(r["id"] for r in rows) == sorted({r["id"] for r in rows})
    assert len(rows) == 24
    done = {part["shard"]: part["samples_done"]
            for part in sleepy_run.records().model_rows()}
    assert done.get("1/2", 0) >= 16, done  # dealt out, each would have done 12
    assert done.get("1/2", 0) + done.get("2/2", 0) == 24
