"""How many workers share one GPU: a second replica of a batch's models only when it fits
and its throughput gain was measured, as the batch size is tuned.

A worker on a GPU leaves it idle while it reads audio, builds features and runs the
Python side of ``generate``; a second worker on the same GPU can fill those gaps, or
only compete for it. Which one is the case depends on the model and the machine, so it
is measured: every model turn records its replicas-per-GPU and its throughput (audio
seconds per wall second of decoding, :class:`~core.evaluation.measurements.Measurement`).
The first run of a model on a GPU with room for two runs one replica; the next one that
has room tries two; from then on the faster wins (two only if ≥ ``GAIN`` × one). On the
CPU, replicas are what ``--devices cpu,cpu`` asks for: nothing is chosen for the user.
"""

from __future__ import annotations

from core.asr.spec import AsrModelSpec
from core.evaluation.measurements import MeasurementStore

from collections.abc import Sequence
from dataclasses import dataclass

MAX_REPLICAS = 2
GAIN = 1.1  # two replicas must beat one by 10 % to be kept


@dataclass(frozen=True)
class Replicas:
    count: int
    reason: str


def device_throughput(store: MeasurementStore, spec: AsrModelSpec, dtype: str | None,
                      replicas: int) -> float | None:
    """One GPU's measured throughput with ``replicas`` workers on it: their latest turn's
    per-worker throughput times the workers."""
    turns = [m for m in store.all(spec, "cuda", dtype)
             if (m.replicas or 1) == replicas and m.throughput]
    return turns[-1].throughput * replicas if turns else None  # type: ignore[operator]


def choose(specs: Sequence[tuple[AsrModelSpec, str | None]], need_gb: float,
           budget_gb: float, store: MeasurementStore, asked: int | None = None) -> Replicas:
    """Replicas per GPU for a batch of ``(spec, dtype)`` whose models need ``need_gb`` of a
    GPU's ``budget_gb``: the fewest any of its models should have (``asked``: the run's
    ``--replicas``, honoured when it fits)."""
    fits = min(MAX_REPLICAS, int(budget_gb // need_gb)) if need_gb > 0 else MAX_REPLICAS
    if fits < 2:
        return Replicas(1, f"one replica per GPU: two need {2 * need_gb:.1f} GB of "
                           f"{budget_gb:.1f} GB")
    if asked is not None:
        count = min(asked, fits)
        return Replicas(count, f"{count} replica(s) per GPU, as asked (--replicas)")
    reasons = []
    for spec, dtype in specs:
        one = device_throughput(store, spec, dtype, 1)
        two = device_throughput(store, spec, dtype, 2)
        if one is None:
            return Replicas(1, f"one replica per GPU: {spec.key} has no measured throughput "
                               "yet (this run measures it)")
        if two is not None and two < GAIN * one:
            return Replicas(1, f"one replica per GPU: two measured {two:.0f} against "
                               f"{one:.0f} audio s/s for {spec.key}")
        reasons.append(f"{spec.key} {one:.0f} → {two:.0f} audio s/s" if two is not None
                       else f"{spec.key}: trying two (one measured {one:.0f} audio s/s)")
    return Replicas(2, "two replicas per GPU: " + "; ".join(reasons))


def expand(devices: Sequence[str], replicas: int) -> list[str]:
    """Each device listed ``replicas`` times (one data-parallel worker per entry)."""
    return [device for device in devices for _ in range(replicas)]
