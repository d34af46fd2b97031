"""Running a batch's data-parallel workers as Ray tasks, on a cluster or on this machine.

The same worker code (:func:`core.evaluation.worker.run_batch`) runs inside each
task, the tasks sharing every model's samples as they go (:mod:`core.evaluation.claims`),
writing into the one run folder — so the folder must be on a path every node sees (a
shared filesystem), as must the dataset. Ray places each task where its resources are
free: one GPU per task for a CUDA run, and the planned memory of the batch's heaviest
model (Ray's ``memory`` resource), so a replica only goes where it fits. A task whose
worker process dies or whose node is lost is retried by Ray elsewhere, taking back the
samples it had claimed; the records being first-wins and each task skipping what is
already recorded, nothing is lost or done twice.
"""

from __future__ import annotations

from core import bytecode
from core.devices import is_cuda
from core.evaluation.run_dir import RunDir
from core.evaluation.shards import Shard

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TASK_RETRIES = 3


class ClusterError(RuntimeError):
    """A Ray cluster that cannot be reached or used; the message says why."""


@dataclass(frozen=True)
class Placement:
    """What one task asks Ray for."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    memory_bytes: int = 0


def connect(address: str) -> dict[str, Any]:
    """Join ``address`` ("local": a Ray started here with this machine's CPUs and GPUs;
    "auto": the cluster this machine belongs to; else ``host:port``). Returns its resources."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reporting home from ERT's runs
    import ray

    if not ray.is_initialized():
        try:
            if address == "local":  # always a fresh Ray here, never a stale cluster file's
                ray.init(address="local", include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": {"PYTHONPATH": str(_repo_root()),
                                                   **bytecode.overrides()}})
            else:
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(f"cannot join the Ray cluster at {address!r}: {exc}") from exc
    return dict(ray.cluster_resources())


def _gpu_free_gb() -> float | None:
    """Free memory of the GPU Ray gave this task (run on a GPU node)."""
    import torch

    if not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info()
    return free / 2**30


def plan_memory_gb(address: str, device: str) -> tuple[float | None, str]:
    """What one replica may use where it lands, for the plan: on CPUs the largest alive
    node's Ray ``memory`` (a task only goes where its planned memory fits, so a batch
    needs one node that holds it); on GPUs the free memory of one of the cluster's GPUs,
    read by a one-GPU task (Ray does not report GPU memory). None when unknown: the plan
    then uses this machine's."""
    resources = connect(address)
    import ray

    if is_cuda(device):
        if not resources.get("GPU"):
            return None, "the cluster has no GPU"
        probe = ray.remote(num_gpus=1, max_retries=0)(_gpu_free_gb)
        try:
            free = ray.get(probe.remote(), timeout=300)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            return None, f"no GPU of the cluster answered ({exc})"
        return free, "free memory of a cluster GPU (probed by a Ray task)"
    memory = [node["Resources"]["memory"] / 2**30 for node in ray.nodes()
              if node.get("Alive") and (node.get("Resources") or {}).get("memory")]
    if not memory:
        return None, "the cluster reports no memory"
    return max(memory), f"the largest of {len(memory)} cluster nodes (Ray memory)"


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def shard_count(resources: dict[str, Any], device: str, requested: int) -> int:
    """How many workers: the ``--devices`` count if given, else one per GPU of the cluster
    for a CUDA run, else one per node."""
    if requested:
        return requested
    if is_cuda(device):
        return max(1, int(resources.get("GPU", 0)))
    return max(1, sum(1 for key in resources if key.startswith("node:") and
                      not key.startswith("node:__internal")))


def _task(run_dir: str, batch: str, index: int, count: int, device: str,
          claims: str | None = None) -> dict[str, Any]:
    """One shard in a Ray worker process (imported there by name); ``claims``: the folder
    where the shards share the samples (a retried task, same arguments, takes back what
    it had claimed)."""
    from core.evaluation.worker import run_batch

    import ray

    if is_cuda(device):  # the GPU Ray gave this task
        gpu = ray.get_gpu_ids()
        device = f"cuda:{int(gpu[0])}" if gpu else device
    code = run_batch(Path(run_dir), batch, Shard(index, count, device),
                     Path(claims) if claims else None)
    return {"code": code, "node": ray.util.get_node_ip_address(), "device": device,
            "node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}


def node_table() -> list[dict[str, Any]]:
    """The cluster's nodes and what each has (CPUs, memory, GPUs), for the Monitor page."""
    import ray

    rows = []
    for node in ray.nodes():
        res = node.get("Resources") or {}
        rows.append({"node": str(node.get("NodeID", ""))[:12],
                     "address": node.get("NodeManagerAddress"), "alive": bool(node.get("Alive")),
                     "cpus": res.get("CPU", 0.0), "memory_gb": round(res.get("memory", 0.0)
                                                                      / 2**30, 1),
                     "gpus": res.get("GPU", 0.0)})
    return rows


def run_batch_on_cluster(run_dir: Path, batch: str, count: int, device: str,
                         placement: Placement, waiting: Callable[[], None] | None = None
                         ) -> tuple[list[str], list[str]]:
    """Every shard of ``batch`` as a task; returns (failures, notes on where each ran).
    ``waiting``: called while they run and once at the end (the runner's progress and
    scoring ahead), as for local workers."""
    import ray

    remote = ray.remote(max_retries=TASK_RETRIES, retry_exceptions=False)(_task)
    options: dict[str, Any] = {"num_cpus": placement.num_cpus, "num_gpus": placement.num_gpus}
    if placement.memory_bytes:
        options["memory"] = placement.memory_bytes
    claims = RunDir(run_dir).new_claims(batch) if count > 1 else None
    refs = [remote.options(**options).remote(str(run_dir), batch, i, count, device,
                                             str(claims) if claims else None)
            for i in range(count)]
    failures, notes = _gather(run_dir, batch, refs, waiting)
    run = RunDir(run_dir)
    if count == 1 or run.cancel_requested():
        return failures, notes
    # As for local workers (core.evaluation.worker_processes.settle): what a shard left (a
    # task that failed past Ray's retries, a model it could not load) goes to one more task,
    # which takes every sample of the batch still missing.
    unfinished = [] if failures else run.unfinished(batch)
    if not failures and not unfinished:
        return failures, notes
    retry = remote.options(**options).remote(str(run_dir), batch, 0, 1, device, None)
    retry_failures, retry_notes = _gather(run_dir, batch, [retry], waiting, "retry")
    notes += [f"{failure}; taken by a retry" for failure in failures]
    notes += [f"{batch}: {why}; taken by a retry" for why in unfinished]
    return retry_failures, notes + retry_notes


def _gather(run_dir: Path, batch: str, refs: list[Any], waiting: Callable[[], None] | None,
            label: str | None = None) -> tuple[list[str], list[str]]:
    """Wait for ``refs`` (a shard each); their failures and where each ran."""
    import ray

    pending = list(refs)
    while pending:  # the nodes, for the Monitor page, while the tasks run
        RunDir(run_dir).write_cluster(node_table())
        if waiting:
            waiting()
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=2.0)
    RunDir(run_dir).write_cluster(node_table())
    if waiting:
        waiting()
    failures, notes = [], []
    for i, ref in enumerate(refs):
        name = label or f"shard {i + 1}/{len(refs)}"
        try:
            done = ray.get(ref)
        except (ray.exceptions.RayError, OSError) as exc:
            failures.append(f"{batch}: {name} failed on the cluster: {exc}")
            continue
        notes.append(f"{batch}: {name} ran on {done['node']} ({done['device']}, "
                     f"node {done['node_id']})")
        if done["code"] != 0:
            failures.append(f"{batch}: {name} exited with {done['code']}")
    return failures, notes
