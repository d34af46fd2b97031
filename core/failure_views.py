"""Where models fail, as the pages show it: a run's report for any slice column, and its chart.

The report itself is :func:`core.analysis.analysis_of` over the run's scored samples (the
same one ``ert score`` and the result files make); this module only reads a run, lists the
columns it can be sliced by and draws the slice chart.
"""

from __future__ import annotations

from core.analysis import analysis_of
from core.evaluation.run_dir import DETAILED, RunDir
from core.scoring import Prediction, score_predictions
from core.slices import ALWAYS

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

# Record fields that are not slicing columns (texts, scores, timings, bookkeeping).
_NOT_COLUMNS = frozenset({
    "id", "model", "batch", "audio_filepath", "reference", "hypothesis", "reference_norm",
    "hypothesis_norm", "time", "error", "batch_size", "cached", "decoded_language", "skipped",
    "decode_seconds", "latency", "cached_time", "device", "extra", "duration", "wer", "cer",
    "language"})


def _scored(row: dict[str, Any]) -> bool:
    return row.get("error") is None and not row.get("skipped") and \
        row.get("hypothesis_norm") is not None


def slice_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """What a run can be sliced by: clip length, language, dataset, and every manifest column
    its samples carry with more than one value (``accent``, ``gender``, ``condition``…)."""
    values: dict[str, set[str]] = {}
    for row in rows:
        fields = {**(row.get("extra") or {}),
                  **{k: v for k, v in row.items() if k not in _NOT_COLUMNS}}
        for key, value in fields.items():
            if isinstance(value, str | int | float | bool) and key not in ALWAYS:
                values.setdefault(key, set()).add(str(value))
    # A column is a slice when its values repeat: not one value, not one per sample (ids).
    clips = len({row.get("id") for row in rows})
    return [*ALWAYS, *sorted(k for k, v in values.items() if 1 < len(v) < clips)]


def run_report(run: Path, by: Sequence[str] = (), baseline: str | None = None
               ) -> dict[str, Any]:
    """A run's report (slices by ``by`` and the columns always sliced, error anatomy,
    hallucinations, a baseline's changed words), from its detailed result file."""
    path = RunDir(run).latest(DETAILED)
    stamp = (path.stat().st_mtime_ns, path.stat().st_size) if path else (0, 0)
    return _report(Path(run), tuple(by), baseline, stamp)


@functools.lru_cache(maxsize=16)
def _report(run: Path, by: tuple[str, ...], baseline: str | None, stamp: tuple[int, int]
            ) -> dict[str, Any]:
    del stamp  # the cache key: a rewritten file is read again
    predictions = [Prediction(r["model"], r["id"], r["reference"], r["hypothesis"],
                              r.get("language"), fields=r)
                   for r in RunDir(run).read_detailed() if _scored(r)]
    models = {p.model for p in predictions}
    baseline = baseline if baseline in models else None
    return analysis_of(predictions, score_predictions(predictions, baseline), by, baseline)


def slice_rows(report: dict[str, Any], column: str) -> list[dict[str, Any]]:
    """The report's rows for one slice column (fractions, ``wer_low``/``wer_high``)."""
    out = []
    for row in report.get("slices", []):
        if row["column"] == column:
            low, high = row["wer_ci"] or (None, None)
            out.append({**row, "slice": row["value"], "wer_low": low, "wer_high": high})
    return out


def slice_chart(rows: Sequence[dict[str, Any]]) -> alt.LayerChart | None:
    """WER per slice value, a bar per model, its 95 % interval as an error bar (percent)."""
    if not rows:
        return None
    frame = pd.DataFrame([{"slice": r["slice"], "model": r["model"], "WER %": 100 * r["wer"],
                           "low": 100 * (r["wer_low"] if r["wer_low"] is not None else r["wer"]),
                           "high": 100 * (r["wer_high"] if r["wer_high"] is not None
                                          else r["wer"]), "samples": r["samples"]}
                          for r in rows if r["wer"] is not None])
    order = list(dict.fromkeys(r["slice"] for r in rows))
    base = alt.Chart(frame).encode(
        x=alt.X("slice:N", sort=order, title=None, axis=alt.Axis(labelAngle=0)),
        xOffset="model:N")
    bars = base.mark_bar().encode(y=alt.Y("WER %:Q"), color="model:N",
                                  tooltip=["slice", "model", "WER %", "low", "high", "samples"])
    errors = base.mark_rule(color="black").encode(y="low:Q", y2="high:Q")
    return alt.layer(bars, errors).properties(height=280)
