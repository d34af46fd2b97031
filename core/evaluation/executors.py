"""Where a run's batches execute: local worker processes, or Ray tasks on a cluster.

The runner hands each planned batch, in order, to one executor and learns only what
failed and what was recovered. The local executor chooses the batch's devices (GPU
replicas included) and, on GPUs, starts the next batch's workers while one runs; the
Ray executor asks the cluster for what each task needs (:class:`cluster.Placement`).
"""

from __future__ import annotations

from core.asr.dtype import load_dtype
from core.devices import cuda_index, device_kind, is_cpu, is_cuda
from core.evaluation import cluster, replicas, worker_processes
from core.evaluation.config import RunConfig
from core.evaluation.measurements import MeasurementStore
from core.evaluation.planner import Plan, PlannedBatch, planned_dtype
from core.evaluation.run_dir import RunDir
from core.evaluation.shards import Shard, shards
from core.evaluation.worker_processes import Workers

import functools
from collections.abc import Callable
from typing import Any, Protocol

Waiting = Callable[[], None]  # called while workers run: progress, scoring ahead
Outcome = tuple[list[str], list[str]]  # failures left, notes on what was recovered


class Executor(Protocol):
    def run(self, index: int, waiting: Waiting) -> Outcome:
        """Run the plan's batch ``index`` to the end."""
        ...

    def close(self) -> None:
        """End whatever was started ahead and will not run (a cancel, an error)."""
        ...


def executor_for(run: RunDir, config: RunConfig, plan: Plan) -> Executor:
    """Ray's for a cluster run (joining the cluster now), else local worker processes."""
    if config.cluster:
        return RayExecutor(run, config, plan, cluster.connect(config.cluster))
    return LocalExecutor(run, config, plan)


class LocalExecutor:
    """Each batch in worker processes on this machine, one per device it uses."""

    def __init__(self, run: RunDir, config: RunConfig, plan: Plan) -> None:
        self.folder, self.config, self.plan = run, config, plan
        self.upcoming: Workers | None = None  # the next batch's, started ahead and held

    def run(self, index: int, waiting: Waiting) -> Outcome:
        following = self.plan.batches[index + 1:index + 2]
        start_next = (functools.partial(start_batch, self.folder, self.config, self.plan,
                                        following[0], held=True)
                      if following and starts_ahead(self.config) else None)
        workers = self.upcoming or start_batch(self.folder, self.config, self.plan,
                                               self.plan.batches[index])
        self.upcoming = None
        failures, notes, self.upcoming = worker_processes.run_to_end(
            self.folder, workers, waiting, start_next)
        return failures, workers.notes + notes

    def close(self) -> None:
        if self.upcoming is not None:
            self.upcoming.release()  # they end without running
            self.upcoming = None


class RayExecutor:
    """Each batch as Ray tasks (:mod:`core.evaluation.cluster`), placed where a GPU (on a
    CUDA run) and the batch's planned memory are free."""

    def __init__(self, run: RunDir, config: RunConfig, plan: Plan,
                 resources: dict[str, Any]) -> None:
        self.folder, self.config, self.plan = run, config, plan
        self.resources = resources  # the cluster's, as it was joined

    def run(self, index: int, waiting: Waiting) -> Outcome:
        batch = self.plan.batches[index]
        count = cluster.shard_count(self.resources, self.config.device,
                                    len(self.config.devices))
        return cluster.run_batch_on_cluster(self.folder.path, batch.name, count,
                                            self.config.device, placement(self.config, batch),
                                            waiting)

    def close(self) -> None:
        """Nothing starts ahead on a cluster."""


def placement(config: RunConfig, batch: PlannedBatch) -> cluster.Placement:
    """What each of the batch's tasks asks Ray for: a GPU on a CUDA run, and the planned
    memory of the batch, so that a task only lands where it fits."""
    return cluster.Placement(num_gpus=1.0 if is_cuda(config.device) else 0.0,
                             memory_bytes=int(batch.need_gb * 2**30))


def starts_ahead(config: RunConfig) -> bool:
    """Whether the next batch's workers start (and import what their models need) while a
    batch runs: on GPUs, where the host's memory is not what the plan budgets and the
    workers leave its CPU idle. On CPUs they would take memory and cores from the batch
    that runs."""
    return is_cuda(config.device)


def start_batch(run: RunDir, config: RunConfig, plan: Plan, batch: PlannedBatch,
                held: bool = False) -> Workers:
    """Start the batch's workers: one, or one per device sharing its samples as they go
    (:mod:`core.evaluation.claims`), with the replicas :func:`replicated` chose."""
    devices, notes = replicated(config, plan, batch)
    if len(devices) <= 1:
        parts: list[Shard | None] = [Shard(0, 1, devices[0]) if devices else None]
        claims = None
    else:
        parts, claims = list(shards(devices)), run.new_claims(batch.name)
    workers = worker_processes.start_workers(run, batch.name, parts, claims, held)
    workers.notes = notes
    return workers


def replicated(config: RunConfig, plan: Plan, batch: PlannedBatch
               ) -> tuple[list[str], list[str]]:
    """The batch's devices with the replicas per GPU :mod:`core.evaluation.replicas` chose
    (GPU runs only), and a note saying why when it is more than one."""
    if is_cpu(config.device) or config.replicas == 1:
        return config.devices, []
    registry = config.registry()
    store = MeasurementStore()
    try:
        specs = [registry.get(m) for m in batch.models]
        kind = device_kind(config.device)  # measurements are filed by kind and dtype
        loaded = [(spec, load_dtype(spec, kind, planned_dtype(plan, spec.key, config.dtype)))
                  for spec in specs]
        choice = replicas.choose(loaded, batch.need_gb, plan.budget_gb, store,
                                 asked=config.replicas)
    finally:
        store.close()
    if choice.count == 1:
        return config.devices, []
    gpus = config.devices or [f"cuda:{cuda_index(config.device)}"]  # one: cuda is cuda:0
    return replicas.expand(gpus, choice.count), [f"{batch.name}: {choice.reason}"]
