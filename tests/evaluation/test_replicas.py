"""Replicas per GPU: two only when they fit and were measured faster; shards know them."""

from __future__ import annotations

from core.asr.spec import AsrModelSpec
from core.evaluation import replicas
from core.evaluation.measurements import Measurement, MeasurementStore
from core.evaluation.shards import Shard, shards

import time

import pytest

SPEC = AsrModelSpec(key="whisper:large-v3", source="openai/whisper-large-v3")


def _turn(store: MeasurementStore, workers: int, throughput: float) -> None:
    store.add(SPEC, Measurement(device="cuda", dtype="bfloat16", batch_size=64, clip_seconds=5.0,
                                peak_gb=1.0, retained_gb=0.1, peak_gpu_gb=9.0, rtfx=300.0,
                                load_seconds=12.0, measured=time.time(), replicas=workers,
                                throughput=throughput))


@pytest.fixture
def store(tmp_path):
    store = MeasurementStore(tmp_path / "m.sqlite")
    yield store
    store.close()


def test_one_replica_until_a_throughput_is_measured_then_two_are_tried(store):
    first = replicas.choose([(SPEC, "bfloat16")], 8.0, 100.0, store)
    assert first.count == 1 and "no measured throughput" in first.reason
    _turn(store, 1, 100.0)
    second = replicas.choose([(SPEC, "bfloat16")], 8.0, 100.0, store)
    assert second.count == 2 and "trying two" in second.reason


@pytest.mark.parametrize("per_worker, kept", [(60.0, 2), (54.0, 1), (40.0, 1)])
def test_two_replicas_are_kept_only_when_measured_ten_percent_faster(store, per_worker, kept):
    _turn(store, 1, 100.0)
    _turn(store, 2, per_worker)  # two workers on one GPU: the GPU does 2 × per_worker
    assert replicas.choose([(SPEC, "bfloat16")], 8.0, 100.0, store).count == kept


def test_two_replicas_never_exceed_the_gpu_budget(store):
    _turn(store, 1, 100.0)
    _turn(store, 2, 90.0)
    choice = replicas.choose([(SPEC, "bfloat16")], 60.0, 100.0, store)
    assert choice.count == 1 and "120.0 GB of 100.0 GB" in choice.reason


def test_older_measurements_without_replicas_count_as_one_and_speed_ignores_shared_turns(store):
    store.add(SPEC, Measurement(device="cuda", dtype="bfloat16", batch_size=8, clip_seconds=5.0,
                                peak_gb=1.0, retained_gb=0.1, peak_gpu_gb=9.0, rtfx=250.0,
                                load_seconds=12.0, measured=time.time()))
    _turn(store, 2, 50.0)
    assert store.speed(SPEC, "cuda", "bfloat16").rtfx == 250.0  # the time estimate's source
    assert replicas.device_throughput(store, SPEC, "bfloat16", 2) == 100.0


def test_shards_on_a_shared_gpu_know_their_replicas_and_round_trip_as_arguments():
    parts = shards(replicas.expand(["cuda:0", "cuda:1"], 2))
    assert [(p.device, p.replicas) for p in parts] == [("cuda:0", 2), ("cuda:0", 2),
                                                      ("cuda:1", 2), ("cuda:1", 2)]
    for part in parts:
        assert Shard.parse(*part.as_args()[1::2]) == part
    assert Shard.parse("0/2", "cpu") == Shard(0, 2, "cpu", 1)


def test_a_worker_sees_the_gpu_its_device_names_through_the_parent_visible_list(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert Shard(1, 2, "cuda:1").environment() == {"CUDA_VISIBLE_DEVICES": "5"}
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert Shard(1, 2, "cuda:1").environment() == {"CUDA_VISIBLE_DEVICES": "1"}


def test_a_gpu_run_plans_two_replicas_from_measurements(tmp_path, monkeypatch):
    """The runner's choice for a GPU batch (nothing runs on a GPU here)."""
    from core.evaluation.config import RunConfig
    from core.evaluation.executors import replicated
    from core.evaluation.planner import Plan, PlannedBatch, Strategy

    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))
    plan = Plan(device="cuda", budget_gb=60.0, available_gb=75.0, strategy=Strategy.AGGRESSIVE,
                batches=[PlannedBatch("b", ["whisper:large-v3"], 9.0, "heavy")])
    config = RunConfig(dataset="x", models=["whisper:large-v3"], device="cuda",
                       devices=["cuda:0", "cuda:1"])
    assert replicated(config, plan, plan.batches[0]) == (["cuda:0", "cuda:1"], [])
    from core.asr.registry import load_asr_registry

    store = MeasurementStore()  # the one the runner opens (ERT_CACHE_DIR)
    registered = load_asr_registry().get("whisper:large-v3")
    store.add(registered, Measurement(device="cuda", dtype="bfloat16", batch_size=64,
                                      clip_seconds=5.0, peak_gb=1.0, retained_gb=0.1,
                                      peak_gpu_gb=9.0, rtfx=300.0, load_seconds=12.0,
                                      measured=time.time(), replicas=1, throughput=120.0))
    store.close()
    devices, notes = replicated(config, plan, plan.batches[0])
    assert devices == ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]
    assert notes and "trying two" in notes[0]
    cpu = RunConfig(dataset="x", models=["whisper:large-v3"], devices=["cpu", "cpu"])
    assert replicated(cpu, plan, plan.batches[0]) == (["cpu", "cpu"], [])  # the user's
