"""What ERT's speed figures mean: one function each, over a model's sample records.

Only *timed* samples count: those the model transcribed in this run. Samples
served from the transcription cache, failed ones and skipped ones took no
model time here, so they are left out (and counted, so a figure says what it
rests on). The tuner's probe batches are real samples of the run and are
included. The same sentences go into ``run_manifest.json`` and the README.
"""

from __future__ import annotations

from core.metrics import rtfx

import statistics
from collections.abc import Sequence
from typing import Any

Row = dict[str, Any]

DEFINITIONS = {
    "rtfx": "model RTFx: audio seconds of the timed samples / the model's compute seconds "
            "for them (batches split in proportion to audio length; the tuner's probe "
            "batches included, model load and audio decoding not)",
    "rtfx_end_to_end": "end-to-end RTFx: audio seconds of the timed samples / (model load "
                       "+ audio decoding + compute) seconds, load summed over every part of "
                       "a resumed run",
    "mean_compute_s": "per-clip compute share: a clip's share of its batch's compute time, "
                      "averaged over the timed samples",
    "mean_latency_s": "per-clip latency: seconds from the start of a clip's batch (reading "
                      "its audio included) to its result, averaged over the timed samples",
    "rtfx_when_cached": "for samples served from the cache: the model RTFx measured when "
                        "those transcripts were made (when the cache recorded it)",
    "timed": "samples the model transcribed in this run: the only ones speed is measured on",
    "samples_per_s": "timed samples per second of their audio decoding and model compute "
                     "(model load left out): what the progress table's samples/s settles at",
    "batch_size": "the batch size that transcribed the most of the model's timed samples",
}


def timed(rows: Sequence[Row]) -> list[Row]:
    """Samples the model transcribed here: succeeded, not from the cache, with audio."""
    return [r for r in rows if r.get("error") is None and not r.get("skipped")
            and not r.get("cached") and r.get("duration")]


def cached(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r.get("cached") and r.get("error") is None]


def _audio(rows: Sequence[Row]) -> float:
    return sum(r["duration"] for r in rows)


def compute_seconds(rows: Sequence[Row]) -> float | None:
    """The model's compute over its timed samples, every part of a resumed run included."""
    chosen = timed(rows)
    return round(sum(r["time"] for r in chosen), 4) if chosen else None


def model_rtfx(rows: Sequence[Row]) -> float | None:
    chosen = timed(rows)
    return rtfx(_audio(chosen), sum(r["time"] for r in chosen)) if chosen else None


def end_to_end_rtfx(rows: Sequence[Row], load_seconds: float) -> float | None:
    chosen = timed(rows)
    if not chosen:
        return None
    spent = load_seconds + sum((r.get("decode_seconds") or 0.0) + r["time"] for r in chosen)
    return rtfx(_audio(chosen), spent)


def mean_compute(rows: Sequence[Row]) -> float | None:
    chosen = timed(rows)
    return statistics.fmean(r["time"] for r in chosen) if chosen else None


def mean_latency(rows: Sequence[Row]) -> float | None:
    known = [r["latency"] for r in timed(rows) if r.get("latency") is not None]
    return statistics.fmean(known) if known else None


def rtfx_when_cached(rows: Sequence[Row]) -> float | None:
    known = [r for r in cached(rows) if r.get("cached_time") and r.get("duration")]
    return rtfx(_audio(known), sum(r["cached_time"] for r in known)) if known else None


def samples_per_second(rows: Sequence[Row]) -> float | None:
    """Timed samples per second of their audio decoding and model compute (DEFINITIONS)."""
    chosen = timed(rows)
    spent = sum((r.get("decode_seconds") or 0.0) + r["time"] for r in chosen)
    return round(len(chosen) / spent, 3) if chosen and spent > 0 else None


def final_batch_size(rows: Sequence[Row]) -> int | None:
    """The batch size that transcribed the most of the model's timed samples (the largest
    of equals)."""
    sizes = [r["batch_size"] for r in timed(rows) if r.get("batch_size")]
    return max(set(sizes), key=lambda size: (sizes.count(size), size)) if sizes else None
