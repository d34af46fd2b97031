"""Finding the batch size where throughput peaks, on the run's own samples.

The R-JEPA audit found batch 8 seven times faster than batch 1, and batch 16
three times slower than 8: the best size is a knee that depends on the model
and the machine. The tuner doubles the size while audio-seconds per second
rises (by more than ``min_gain``) and memory stays under budget, then keeps
the best. Probing uses real samples, so no work is wasted.

Batched int8/bf16 kernels may flip a near-tie, so a clip's transcript can depend
on the size of the batch it was decoded in (not on its neighbours' audio). A
knee found from timing would then make two identical runs differ; ``replay``
follows the step sizes an earlier run of the same model, device, dtype and
dataset used, so a repeated run decodes every clip at the same size.
"""

from __future__ import annotations

from core.metrics import rtfx

from dataclasses import dataclass, field


@dataclass
class CurvePoint:
    batch_size: int
    throughput: float  # audio seconds transcribed per wall second: RTFx
    peak_gb: float


@dataclass
class BatchSizeTuner:
    start: int = 1
    max_size: int = 32
    min_gain: float = 0.05
    budget_gb: float | None = None
    enabled: bool = True
    curve: list[CurvePoint] = field(default_factory=list)
    settled: bool = False
    replay: list[int] | None = None  # an earlier run's step sizes, followed exactly
    steps: list[int] = field(default_factory=list)  # the size asked for at each step

    def __post_init__(self) -> None:
        self.size = max(1, self.start)
        if self.replay:
            self.size, self.enabled = self.replay[0], False
        if not self.enabled:
            self.settled = True

    @property
    def replaying(self) -> bool:
        return bool(self.replay)

    @property
    def best(self) -> int:
        fitting = [p for p in self.curve
                   if self.budget_gb is None or p.peak_gb <= self.budget_gb]
        if not fitting:
            return 1 if self.curve else self.size
        return max(fitting, key=lambda p: p.throughput).batch_size

    def observe(self, batch_size: int, audio_seconds: float, wall_seconds: float,
                peak_gb: float = 0.0) -> int:
        """Record one batch's outcome; return the size for the next batch."""
        self.steps.append(self.size)
        if self.replay:
            self.size = self.replay[min(len(self.steps), len(self.replay) - 1)]
            return self.size
        if self.settled:
            return self.size
        throughput = rtfx(audio_seconds, wall_seconds) or 0.0
        self.curve.append(CurvePoint(batch_size, throughput, peak_gb))
        over_budget = self.budget_gb is not None and peak_gb > self.budget_gb
        previous = self.curve[-2].throughput if len(self.curve) > 1 else None
        improved = previous is None or throughput > previous * (1 + self.min_gain)
        if over_budget or not improved or batch_size * 2 > self.max_size:
            self.settled = True
            self.size = self.best
        else:
            self.size = batch_size * 2
        return self.size

    def curve_dicts(self) -> list[dict[str, float]]:
        return [{"batch_size": p.batch_size, "throughput": round(p.throughput, 3),
                 "peak_gb": round(p.peak_gb, 3)} for p in self.curve]
