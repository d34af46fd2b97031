"""Data-parallel shards: which samples a worker takes, and which device it runs on.

With several devices, each model of a batch is evaluated by one worker per
device at once. The workers share the samples as they go
(:mod:`core.evaluation.claims`); where the run folder cannot hold claims, worker
``i`` of ``n`` takes every ``n``-th pending sample from ``i`` (:meth:`Shard.take`).
Either way a resumed run hands out only what is still missing, a killed worker's
samples go to whichever worker takes them next time, and the one
``samples.jsonl`` (each record one ``O_APPEND`` write, first record per (model,
sample) wins) keeps every sample exactly once whatever ran it.

A worker sees only its device: ``CUDA_VISIBLE_DEVICES`` is set to that one
GPU, so backends keep asking for plain ``"cuda"``.
"""

from __future__ import annotations

from core.devices import CUDA, cuda_index, is_cuda

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class DeviceError(ValueError):
    """A ``--devices`` list that cannot be used here; the message says why."""


@dataclass(frozen=True)
class Shard:
    """Worker ``index`` of ``count``, on ``device`` ("cpu", or "cuda:N"), which ``replicas``
    workers share (:mod:`core.evaluation.replicas`)."""

    index: int = 0
    count: int = 1
    device: str = "cpu"
    replicas: int = 1

    @property
    def label(self) -> str:
        return f"{self.index + 1}/{self.count}" if self.count > 1 else ""

    def take(self, items: Sequence[T]) -> list[T]:
        """This shard's share of ``items``: every ``count``-th from ``index``."""
        return list(items[self.index::self.count])

    def environment(self) -> dict[str, str]:
        """Environment for the worker process: only its GPU visible; CPU workers share the
        thread cap (``ERT_THREADS``) between them instead of each taking all of it."""
        # A bare cuda (a cluster task's, whose GPU Ray picked) sets nothing here.
        index = cuda_index(self.device) if ":" in self.device else None
        if index is not None:
            # cuda:N is the N-th GPU this process sees: through CUDA_VISIBLE_DEVICES if set.
            seen = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d]
            return {"CUDA_VISIBLE_DEVICES": seen[index] if index < len(seen) else str(index)}
        if self.count > 1:
            from core.threads import requested_threads

            return {"ERT_THREADS": str(max(1, requested_threads() // self.count))}
        return {}

    def as_args(self) -> list[str]:
        return ["--shard", f"{self.index}/{self.count}", "--on",
                self.device if self.replicas == 1 else f"{self.device}x{self.replicas}"]

    @classmethod
    def parse(cls, shard: str, device: str) -> Shard:
        """From ``as_args``: ``I/N`` and ``DEVICE`` or ``DEVICExR`` (R workers share it)."""
        index, count = (int(part) for part in shard.split("/", 1))
        if not 0 <= index < count:
            raise DeviceError(f"shard {shard}: the index must be in 0..{count - 1}")
        name, _, replicas = device.partition("x")
        return cls(index, count, name, int(replicas or 1))


def parse_devices(text: str | None, device: str, visible_gpus: int) -> list[str]:
    """The devices a run uses: ``--devices cuda:0,cuda:2``, else the GPU ``--device cuda:1``
    names, else every visible GPU for ``--device cuda`` (one device when there is one or
    none), else ``["cpu"]``.

    ``cpu`` may be listed several times (several CPU workers, each with its thread cap).
    """
    if not text and is_cuda(device) and ":" in device:
        text = device  # one GPU named: that one, checked like a list of one
    if not text:
        if is_cuda(device) and visible_gpus > 1:
            return [f"cuda:{i}" for i in range(visible_gpus)]
        return ["cuda:0" if is_cuda(device) else "cpu"]
    devices = [d.strip() for d in text.split(",") if d.strip()]
    for name in devices:
        if name == "cpu":
            continue
        if not name.startswith("cuda:") or not name[5:].isdigit():
            raise DeviceError(f"unknown device {name!r}: use cpu or cuda:N (e.g. cuda:0,cuda:2)")
        if int(name[5:]) >= visible_gpus:
            raise DeviceError(f"{name}: only {visible_gpus} GPU(s) visible here")
    gpus = [d for d in devices if is_cuda(d)]
    if len(set(gpus)) != len(gpus):
        raise DeviceError(f"a GPU is listed twice in {text!r}")
    if gpus and len(gpus) != len(devices):
        raise DeviceError("mix of cpu and cuda devices: list one kind")
    return devices


def shards(devices: Sequence[str]) -> list[Shard]:
    """One shard per entry; a device listed twice has two workers (replicas) on it."""
    return [Shard(i, len(devices), d, devices.count(d)) for i, d in enumerate(devices)]


def run_devices(text: str | None, device: str, cluster: str | None = None
                ) -> tuple[str, list[str]]:
    """A run's ``(device, devices)`` (:class:`RunConfig`'s) from ``--device``/``--devices``.

    Here the list is checked against the visible GPUs, and ``cuda`` with several GPUs uses
    them all; on a cluster it only counts workers (its GPUs are not this machine's). An
    empty list means one worker on ``device``. Raises :class:`DeviceError`.
    """
    if cluster:
        return device, [d.strip() for d in (text or "").split(",") if d.strip()]
    gpus = 0
    if is_cuda(device) or any(is_cuda(d.strip()) for d in (text or "").split(",")):
        import torch

        gpus = torch.cuda.device_count()
    devices = parse_devices(text, device, gpus)
    kind = CUDA if any(is_cuda(d) for d in devices) else device
    named = bool(text) or (is_cuda(device) and ":" in device)  # cuda:1 keeps its index
    return kind, devices if named or len(devices) > 1 else []
