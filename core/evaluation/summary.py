"""A model's outcome in a run: the row of every result file, table and chart."""

from __future__ import annotations

from core.phrasing import MISSING, plural

from dataclasses import asdict, dataclass, field, fields
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
    rtfx: float | None  # model RTFx: audio s / model compute s, timed samples only
    mean_latency_s: float | None  # real latency: from its batch's start to its result
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
    # Speed: which samples it was measured on, and what else it means (README "Speed").
    timed: int = 0  # transcribed by the model in this run: the only ones speed is measured on
    cached: int = 0  # served from the transcription cache: scored, not timed
    rtfx_end_to_end: float | None = None  # audio s / (load + audio decoding + compute) s
    mean_compute_s: float | None = None  # per-clip share of its batch's compute time
    rtfx_when_cached: float | None = None  # model RTFx when the cached transcripts were made
    parts: int = 0  # worker turns this model took (1, or more after resumes)
    dtype: str | None = None  # what its weights loaded in
    # The plan's figures against what happened (issue 12): memory and time.
    predicted_gb: float | None = None
    predicted_from: str | None = None  # "measured …", "estimated", "registry"
    measured_gb: float | None = None  # peak RSS growth while it ran (highest part)
    retained_gb: float | None = None  # what its worker still held after freeing it
    predicted_seconds: float | None = None
    actual_seconds: float | None = None  # its turns' wall time, load included
    # Issue 26: a run resumed after a cancel or a crash (its turns one after another), the
    # model compute of every timed clip of every part, the batch sizes its timed clips were
    # decoded at ({"1": 1, "2": 2, "4": 37}) and whether they were tuned, followed an earlier
    # run's ("replayed") or fixed; the batch-invariance check; False when every sample came
    # from the cache and the model was never loaded.
    resumed: bool = False
    compute_seconds: float | None = None
    batch_sizes: dict[str, int] = field(default_factory=dict)
    batch_sizes_from: str | None = None
    batch_invariance: dict[str, Any] | None = None
    loaded: bool = True
    # Issue 28: samples flagged as hallucinations (core.hallucinations), per flag, and the
    # WER without them.
    hallucinations: dict[str, Any] | None = None
    # Every figure of core.figures' registry, by name: what tables and files loop over.
    figures: dict[str, float | None] = field(default_factory=dict)
    # Issue 27: the samples in its languages it was to transcribe, so that a cancelled model
    # says how far it got ("cancelled (4 of 12 done)"); None in results from before.
    expected: int | None = None

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


def csv_row(summary: ModelSummary) -> dict[str, Any]:
    """The summary as a row of a run's ``results.csv``: every field under its result-file
    name and unit, ``wer_ci`` as ``wer_low`` and ``wer_high`` (the Compare page's names)."""
    row: dict[str, Any] = {}
    for name, value in asdict(summary).items():
        if name == "wer_ci":
            row["wer_low"], row["wer_high"] = value or (None, None)
        elif name == "figures":  # each registered figure its own column
            row.update({k: v for k, v in value.items() if k not in row})
        else:
            row[name] = value
    return row


def speed_label(summary: ModelSummary) -> str:
    """What a model's RTFx figure is, in words: "12.3 on 10 of 24 clips", "— (all cached)"."""
    clips = summary.timed + summary.cached
    if summary.rtfx is None:
        if summary.cached and not summary.timed:
            known = (f", {summary.rtfx_when_cached:.1f} when they were made"
                     if summary.rtfx_when_cached else "")
            return f"— (all cached{known})"
        return MISSING
    if summary.cached:
        return f"{summary.rtfx:.1f} on {summary.timed} of {plural(clips, 'clip')}"
    return f"{summary.rtfx:.1f}"


def status_label(summary: ModelSummary) -> str:
    """A model's status in words: "ok", "ok · resumed (2 parts)", "failed", "cancelled (4 of
    12 done)": a cancelled model's success rate covers only the samples it reached, so the
    status says how many those were."""
    status = summary.status
    if status == "cancelled":
        done = summary.samples - summary.skipped
        status += (f" ({done} done)" if summary.expected is None
                   else f" ({done} of {summary.expected} done)")
    if summary.resumed:
        return f"{status} · resumed ({plural(summary.parts, 'part')})"
    return status


def invariance_label(summary: ModelSummary) -> str | None:
    """The batch-invariance check in one line: "2 of 32 clips differ at batch 8 vs 1, WER
    difference +0.4 points" (None when the run did not check)."""
    check = summary.batch_invariance
    if check is None:
        return None
    if not check.get("clips"):
        return "no clip was decoded in a batch of more than one: nothing to check"
    sizes = ", ".join(str(s) for s in check.get("at_batch") or [])
    delta = check.get("delta_wer")
    change = MISSING if delta is None else f"{delta * 100:+.1f} points"
    return (f"{check['differ']} of {plural(check['clips'], 'clip')} differ at batch {sizes} "
            f"vs 1, WER difference {change}")


def memory_label(summary: ModelSummary) -> str:
    """What the model took, or why nothing: "0.34 GB", "not loaded: every sample cached"."""
    if not summary.loaded:
        return "not loaded: every sample cached"
    return MISSING if summary.measured_gb is None else f"{summary.measured_gb:.2f} GB"


def plan_against_run(summary: ModelSummary) -> str:
    """The plan's memory and time against what the model took: "memory: planned 0.59 GB
    (estimated, float32), took 0.34 GB, kept 0.05 GB after · time: planned 8 s, took 11 s"."""
    def gb(value: float | None) -> str:
        return MISSING if value is None else f"{value:.2f} GB"

    def secs(value: float | None) -> str:
        return MISSING if value is None else f"{value:.0f} s"

    source = ", ".join(p for p in (summary.predicted_from, summary.dtype) if p)
    took = (f", took {gb(summary.measured_gb)}, kept {gb(summary.retained_gb)} after"
            if summary.loaded else f", {memory_label(summary)}")
    return (f"memory: planned {gb(summary.predicted_gb)}" + (f" ({source})" if source else "")
            + took + f" · time: planned {secs(summary.predicted_seconds)}, "
            f"took {secs(summary.actual_seconds)}")


def worker_row(status: dict[str, Any]) -> dict[str, Any]:
    """One data-parallel worker's line (Evaluation and Monitor pages): where it runs, what it
    does, and its host's load at its last step (``host_load`` in its status; blank before
    its first step)."""
    load = status.get("host_load") or {}
    gpus = [f"{used:.1f}/{total:.0f}" for used, total in
            zip(load.get("gpu_used_gb") or [], load.get("gpu_total_gb") or [], strict=False)]
    return {"worker": status.get("shard"), "host": status.get("node"),
            "device": status.get("device"), "model": status.get("model"),
            "samples": f"{status.get('done', 0)} of {status.get('total', '—')}",
            "batch size": status.get("batch_size"), "samples/s": status.get("samples_per_s"),
            "host CPU %": load.get("cpu_pct"), "host RAM %": load.get("ram_pct"),
            "GPU GB used/total": ", ".join(gpus) or None}
