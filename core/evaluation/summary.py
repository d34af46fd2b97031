"""A model's outcome in a run: the row of every result file, table and chart."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class ModelSummary:
    model: str
    batch: str
    status: str
    samples: int  # recorded for this model: transcribed, failed or skipped
    succeeded: int
    failures: int
    success_rate: float  # succeeded over the samples in its languages
    wer: float | None
    cer: float | None
    bleu: float | None
    chrf: float | None
    rtfx: float | None
    mean_latency_s: float | None
    band: str | None
    batch_size: int | None
    batch_curve: list[dict[str, float]]
    peak_rss_gb: float | None
    peak_gpu_gb: float | None
    load_seconds: float | None
    error: str | None
    skipped: int = 0  # samples in languages the model does not transcribe
    wer_ci: list[float] | None = None  # 95 % paired-bootstrap interval (fractions)
    languages: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-language figures
    decoding: str = "independent"  # or "packed" (the opt-in speed mode)
    packing_retries: int = 0
    baseline: dict[str, Any] | None = None  # paired change against the run's baseline

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSummary:
        """From a results file; fields a newer ERT added take their defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def refused(cls, model: str, reason: str) -> ModelSummary:
        """A model the planner left out (over the memory budget)."""
        return cls(model, "", "refused", 0, 0, 0, 0.0, None, None, None, None, None, None,
                   None, None, [], None, None, None, reason)
