"""Data-parallel workers: each model's samples dealt between devices, every sample once."""

from __future__ import annotations

from core.evaluation import runner, worker_processes
from core.evaluation.records import read_jsonl
from core.evaluation.run_dir import MODELS_FILE, SAMPLES_FILE, RunDir
from core.evaluation.shards import DeviceError, Shard, parse_devices, shards

import threading
import time

import psutil
import pytest


def test_shards_partition_the_samples_whatever_their_count():
    items = list(range(11))
    for count in (1, 2, 3, 4):
        parts = [Shard(i, count).take(items) for i in range(count)]
        assert sorted(sum(parts, [])) == items  # every item once
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_devices_default_to_every_gpu_and_reject_what_is_not_there():
    assert parse_devices(None, "cuda", 4) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert parse_devices(None, "cuda", 1) == ["cuda:0"]
    assert parse_devices(None, "cpu", 4) == ["cpu"]
    assert parse_devices("cuda:0,cuda:2", "cuda", 4) == ["cuda:0", "cuda:2"]
    assert parse_devices("cpu,cpu", "cpu", 0) == ["cpu", "cpu"]
    for bad, why in (("cuda:3", "only 2"), ("gpu0", "unknown device"),
                     ("cuda:1,cuda:1", "twice"), ("cpu,cuda:0", "mix")):
        with pytest.raises(DeviceError, match=why):
            parse_devices(bad, "cuda", 2)
    assert shards(["cuda:0", "cuda:2"])[1].environment() == {"CUDA_VISIBLE_DEVICES": "2"}


def _midway(samples, act, timeout: float = 240.0) -> threading.Thread:
    """Start a thread that calls ``act()`` until it returns True, once the run has recorded
    two samples (so it lands mid-run, mid-model)."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(read_jsonl(samples)) >= 2 and act():
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch)
    thread.start()
    return thread


def _kill_first(matches) -> list[int]:
    """SIGKILL (no clean-up) the first process whose command line ``matches``; its pid."""
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if matches(proc.info["cmdline"] or []):
                proc.kill()
                return [proc.pid]
        except psutil.Error:
            continue
    return []


def _config(bench, run_config, **kw):
    config = run_config(dataset=str(bench["eight"]), tune_batch_size=False,
                        models=["faster-whisper:tiny.en", "wav2vec2:tiny-random"], **kw)
    config.decode.batch_size = 1
    return config


@pytest.mark.slow
def test_a_run_device_list_is_checked_here_and_only_counted_on_a_cluster():
    from core.evaluation.shards import run_devices

    assert run_devices(None, "cpu") == ("cpu", [])  # one worker
    assert run_devices("cpu,cpu", "cpu") == ("cpu", ["cpu", "cpu"])
    assert run_devices(None, "cuda", "auto") == ("cuda", [])  # the cluster's GPUs decide
    assert run_devices("cuda:0,cuda:5", "cuda", "10.0.0.1:6379") == (
        "cuda", ["cuda:0", "cuda:5"])
    with pytest.raises(DeviceError, match="GPU"):  # this machine has no cuda:5
        run_devices("cuda:0,cuda:5", "cpu")


def test_two_workers_give_every_sample_once_and_the_transcripts_of_one(bench, run_config):
    parallel = _config(bench, run_config, devices=["cpu", "cpu"])
    outcome = runner.start(parallel)
    assert not outcome.worker_failures and not outcome.notes
    rows = read_jsonl(parallel.run_dir / SAMPLES_FILE)
    keys = [(r["model"], r["id"]) for r in rows]
    assert len(keys) == len(set(keys)) == 16
    assert {r["device"] for r in rows} == {"cpu"}
    parts = RunDir(parallel.run_dir).records().turns()  # each turn's last line
    assert len(read_jsonl(parallel.run_dir / MODELS_FILE)) >= len(parts)  # + checkpoints
    assert sorted((p["model"], p["shard"]) for p in parts) == sorted(
        (m, s) for m in parallel.models for s in ("1/2", "2/2"))
    assert all(p["node"] and p["device"] == "cpu" for p in parts)
    assert (parallel.run_dir / "worker_first_shard2.log").exists() or any(
        parallel.run_dir.glob("worker_*_shard2.log"))
    # Each worker filed its turn as one of two on the device, with its throughput: what
    # core.evaluation.replicas compares.
    from core.asr.registry import load_asr_registry
    from core.evaluation.measurements import MeasurementStore

    store = MeasurementStore()
    spec = load_asr_registry(bench["registry"]).get("faster-whisper:tiny.en")
    shared = [m for m in store.all(spec, "cpu", "int8") if m.replicas == 2]
    store.close()
    assert len(shared) >= 2 and all(m.throughput and m.throughput > 0 for m in shared[-2:])
    # Each worker's status carries its host's load: the Monitor page's live table.
    from core.evaluation.summary import worker_row

    workers = [worker_row(s) for s in RunDir(parallel.run_dir).read_status()["shards"]]
    assert len(workers) == 2 and all(w["device"] == "cpu" and w["host"] for w in workers)
    assert all(0 < w["host RAM %"] <= 100 and w["host CPU %"] is not None for w in workers)

    single = _config(bench, run_config, run_id="single")
    assert not runner.start(single).worker_failures
    alone = {(r["model"], r["id"]): r["hypothesis"]
             for r in read_jsonl(single.run_dir / SAMPLES_FILE)}
    assert {(r["model"], r["id"]): r["hypothesis"] for r in rows} == alone


@pytest.mark.slow
def test_a_killed_worker_share_is_retried_and_no_sample_is_lost_or_doubled(bench, run_config):
    config = _config(bench, run_config, devices=["cpu", "cpu"])
    samples = config.run_dir / SAMPLES_FILE
    killed: list[int] = []

    def second_worker(cmdline: list[str]) -> bool:
        return "--shard" in cmdline and cmdline[cmdline.index("--shard") + 1] == "1/2"

    thread = _midway(samples, lambda: bool(killed.extend(_kill_first(second_worker)) or killed),
                     timeout=180)
    outcome = runner.start(config)
    thread.join()
    assert killed, "the second worker was never seen"
    assert not outcome.worker_failures
    assert any("2/2" in note and "retry" in note for note in outcome.notes)
    keys = [(r["model"], r["id"]) for r in read_jsonl(samples)]
    assert len(keys) == len(set(keys)) == 16


def test_a_worker_that_cannot_load_a_model_the_other_ran_leaves_its_samples_to_a_retry(
        bench, run_config, tmp_path):
    """One worker failed to load (two verified a bundled model at once and tripped over each
    other's file) after claiming its first samples; it ended well, so nothing took them and
    the run ended a sample short. The model ran elsewhere: the batch's samples still missing
    go to one more worker, and the model is not a failed one."""
    from core.evaluation.records import RunRecords
    from core.evaluation.run_dir import RunDir
    from core.evaluation.worker import run_batch

    from tests.tiny_models import build_whisper

    folder = tmp_path / "appears-later"
    registry = tmp_path / "asr_models.toml"
    registry.write_text(f'[models."whisper:flaky"]\nsource = "{folder}"\n')
    config = run_config(dataset=str(bench["eight"]), tune_batch_size=False,
                        models=["whisper:flaky"], devices=["cpu", "cpu"],
                        registry_path=str(registry))
    run = RunDir(runner.prepare(config))
    batch = run.read_plan().batches[0].name
    claims = run.new_claims(batch)
    parts = [Shard(0, 2, "cpu"), Shard(1, 2, "cpu")]
    assert run_batch(run.path, batch, parts[0], claims) == 0  # cannot load: no folder yet
    build_whisper(folder)
    with pytest.MonkeyPatch.context() as started_together:  # the other began before the
        started_together.setattr(RunRecords, "failed_models", lambda self: set())  # failure
        assert run_batch(run.path, batch, parts[1], claims) == 0  # loads, takes all it can
    assert len(run.records().sample_rows()) == 7  # the first worker's first claim is lost
    assert run.unfinished(batch) and "whisper:flaky" not in run.records().failed_models()
    workers = worker_processes.Workers(run, batch, list(parts), claims, [], [])
    failures, notes = worker_processes.settle(run, workers, [0, 0], lambda: None)
    assert not failures and any("retry" in n and "failed" in n for n in notes), notes
    keys = [(r["model"], r["id"]) for r in read_jsonl(run.path / SAMPLES_FILE)]
    assert len(keys) == len(set(keys)) == 8
    assert not run.unfinished(batch)


def test_status_of_parallel_workers_is_read_per_device(tmp_path):
    from core.evaluation.run_dir import RunDir

    run = RunDir(tmp_path)
    for index, device in enumerate(["cuda:0", "cuda:1"]):
        run.status_writer(index, batch="b", shard=f"{index + 1}/2", device=device).update(
            model="whisper:tiny", done=index + 1, total=4)
    status = run.read_status()
    assert [(s["device"], s["done"]) for s in status["shards"]] == [("cuda:0", 1), ("cuda:1", 2)]
    assert status["model"] == "whisper:tiny"  # the first worker's, for one-line displays


def test_two_workers_share_a_run_over_conditions_each_item_once(bench, run_config):
    """Workers share work items, not clips: every (model, clip, condition) once, each
    record under its condition, whichever worker took it."""
    config = _config(bench, run_config, devices=["cpu", "cpu"],
                     conditions=["clean", "telephone"])
    config.models = ["wav2vec2:tiny-random"]
    outcome = runner.start(config)
    assert not outcome.worker_failures
    rows = read_jsonl(config.run_dir / SAMPLES_FILE)
    keys = [(r["id"].split("@")[0], r["condition"]) for r in rows]
    assert len(keys) == len(set(keys)) == 16
    assert {c for _, c in keys} == {"clean", "telephone"}
    assert {p["shard"] for p in RunDir(config.run_dir).records().turns()} == {"1/2", "2/2"}


@pytest.mark.slow
def test_cluster_local_runs_the_shards_as_ray_tasks_every_sample_once(
        bench, run_config, monkeypatch, tmp_path):
    ray = pytest.importorskip("ray")
    # as on an image that writes no bytecode: Ray's workers get ERT's cache, like its own
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))
    config = _config(bench, run_config, devices=["cpu", "cpu"], cluster="local")
    seen: list[dict] = []  # the CLI's progress bars, per worker, as for local workers
    try:
        outcome = runner.start(config, progress=seen.append)
    finally:
        ray.shutdown()
    assert not outcome.worker_failures, outcome.worker_failures
    assert len([n for n in outcome.notes if "ran on" in n]) == 2  # two shards, as tasks
    assert len(seen[-1]["shards"]) == 2
    keys = [(r["model"], r["id"]) for r in read_jsonl(config.run_dir / SAMPLES_FILE)]
    assert len(keys) == len(set(keys)) == 16
    parts = read_jsonl(config.run_dir / MODELS_FILE)
    assert {p["shard"] for p in parts} == {"1/2", "2/2"} and all(p["node"] for p in parts)
    assert list((tmp_path / "cache" / "pycache").rglob("core/evaluation/worker.*.pyc"))
    single = _config(bench, run_config, run_id="single-local")
    assert not runner.start(single).worker_failures
    assert {(r["model"], r["id"]): r["hypothesis"]
            for r in read_jsonl(config.run_dir / SAMPLES_FILE)} == {
        (r["model"], r["id"]): r["hypothesis"] for r in read_jsonl(single.run_dir / SAMPLES_FILE)}


@pytest.mark.slow
def test_a_simulated_cluster_places_by_memory_and_survives_a_lost_node(bench, run_config):
    """Three Ray nodes in this machine (ray.cluster_utils): a head too small for the
    batch's planned memory, two workers that fit; one worker node is removed mid-run."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from tests.conftest import REPO

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "memory": 2**20})
    workers = [cluster.add_node(num_cpus=1, memory=8 * 2**30) for _ in range(2)]
    try:
        ray.init(address=cluster.address, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
        config = _config(bench, run_config, devices=["cpu", "cpu"], cluster=cluster.address)
        samples = config.run_dir / SAMPLES_FILE
        removed: list[str] = []

        def remove_a_node() -> bool:
            cluster.remove_node(workers[0])  # its task dies mid-model
            removed.append(workers[0].node_id)
            return True

        thread = _midway(samples, remove_a_node)
        # As the page's Start does: the folder is prepared without joining the cluster, and
        # the runner plans again with the cluster's memory before the first batch.
        outcome = runner.resume(runner.prepare(config, ask_cluster=False))
        thread.join()
        assert removed
        assert not outcome.worker_failures, outcome.worker_failures
        ran_on = [n for n in outcome.notes if "ran on" in n]
        head = cluster.head_node.node_id
        assert ran_on and not any(head in note for note in ran_on)  # never on the small head
        assert all(workers[1].node_id in note for note in ran_on)  # the lost node's share moved
        keys = [(r["model"], r["id"]) for r in read_jsonl(samples)]
        assert len(keys) == len(set(keys)) == 16
        from core.evaluation.run_dir import RunDir

        nodes = RunDir(config.run_dir).read_cluster()["nodes"]  # what the Monitor page lists
        assert len(nodes) == 3 and sum(not n["alive"] for n in nodes) == 1
        # Planned with the cluster's memory (its largest node), not this machine's RAM.
        from core.system import BUDGET_SHARE

        plan = RunDir(config.run_dir).read_plan()
        assert plan.budget_gb == pytest.approx(8 * BUDGET_SHARE)
        assert plan.budget_from.startswith("the cluster: the largest of 3 cluster nodes")
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
def test_what_cluster_shards_leave_unfinished_goes_to_a_retry_task(
        bench, run_config, monkeypatch):
    """As for local workers: a shard that ended well but left samples (it could not load a
    model the others ran; simulated here by the first look at the batch) is followed by one
    more task, which takes every sample still missing."""
    ray = pytest.importorskip("ray")
    from core.evaluation.run_dir import RunDir

    looks: list[list[str]] = []
    real = RunDir.unfinished

    def first_look_finds_some(self, batch):
        looks.append(real(self, batch) if looks else ["whisper:x on cpu (1/2): failed, boom"])
        return looks[-1]

    monkeypatch.setattr(RunDir, "unfinished", first_look_finds_some)
    config = _config(bench, run_config, devices=["cpu", "cpu"], cluster="local")
    try:
        outcome = runner.start(config)
    finally:
        ray.shutdown()
    assert not outcome.worker_failures, outcome.worker_failures
    assert any("boom; taken by a retry" in n for n in outcome.notes), outcome.notes
    assert any("retry ran on" in n for n in outcome.notes), outcome.notes
    keys = [(r["model"], r["id"]) for r in read_jsonl(config.run_dir / SAMPLES_FILE)]
    assert len(keys) == len(set(keys)) == 16


@pytest.mark.slow
def test_a_ray_worker_killed_mid_task_is_retried_and_every_sample_lands_once(bench, run_config):
    ray = pytest.importorskip("ray")
    config = _config(bench, run_config, devices=["cpu", "cpu"], cluster="local")
    samples = config.run_dir / SAMPLES_FILE
    killed: list[int] = []

    def ray_task(cmdline: list[str]) -> bool:
        return any("ray::_task" in part for part in cmdline)

    thread = _midway(samples, lambda: bool(killed.extend(_kill_first(ray_task)) or killed))
    try:
        outcome = runner.start(config)
    finally:
        thread.join()
        ray.shutdown()
    assert killed, "no Ray task worker was seen"
    assert not outcome.worker_failures, outcome.worker_failures
    keys = [(r["model"], r["id"]) for r in read_jsonl(samples)]
    assert len(keys) == len(set(keys)) == 16


def test_cluster_shards_follow_its_gpus_nodes_or_the_devices_asked():
    from core.evaluation.cluster import shard_count

    resources = {"CPU": 96.0, "GPU": 6.0, "memory": 1e12, "node:10.0.0.1": 1.0,
                 "node:10.0.0.2": 1.0, "node:__internal_head__": 1.0}
    assert shard_count(resources, "cuda", 0) == 6  # one per GPU of the cluster
    assert shard_count(resources, "cpu", 0) == 2  # one per node
    assert shard_count(resources, "cuda", 3) == 3  # --devices with three entries
    assert shard_count({"CPU": 2.0}, "cuda", 0) == 1
