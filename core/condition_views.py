"""A run's robustness conditions as the Compare page shows them: the table, and what the
models heard.

The figures are the run's ``conditions`` report (:func:`core.robustness.report`, read
through :func:`core.failure_views.run_report`); the chart is
:func:`core.evaluation.condition_chart.draw_condition_chart`, the same one the run saved.
What is new here is listening: a clip under each condition, made again from the run's own
config (conditions are deterministic per clip id and condition, so these are the bytes the
models heard), beside each model's transcript of it.
"""

from __future__ import annotations

from core.audio import AudioError
from core.conditions import CLEAN, ConditionedSample, ConditionError, clip_of, condition_of
from core.datasets import DatasetError, load_dataset_spec
from core.evaluation.run_dir import RunDir
from core.perturbations import wav_bytes
from core.phrasing import percent_span
from core.robustness import CONDITION

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE_COLUMNS = ("model", "condition", "samples", "wer", "wer_ci", "cer", "delta_wer",
                 "delta_ci", "vs_baseline")


def condition_rows(conditions: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The report's rows for a table: intervals as ``wer_low``/``wer_high`` (the pages'
    convention) and the change against clean and the baseline's verdict as text."""
    out = []
    for r in conditions.get("rows", []):
        low, high = r.get("wer_ci") or (None, None)
        delta = r.get("delta_wer_ci")
        versus = r.get("baseline") or {}
        verdict = versus.get("verdict") or ""
        if versus.get("delta_wer") is not None:
            verdict = f"{100 * versus['delta_wer']:+.1f} vs {versus.get('model')}: {verdict}"
        out.append({**r, "wer_low": low, "wer_high": high,
                    "delta_ci": percent_span(delta, signed=True) if delta else None,
                    "vs_baseline": verdict or None})
    return out


def run_conditions(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The conditions a run's records were heard under, in the order they were run."""
    return list(dict.fromkeys(r[CONDITION] for r in rows if r.get(CONDITION)))


def clips(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The clip ids of a run with conditions (each heard under every condition)."""
    return list(dict.fromkeys(clip_of(r["id"], r[CONDITION]) for r in rows
                              if r.get(CONDITION)))


def transcripts(rows: Sequence[Mapping[str, Any]], clip_id: str
                ) -> dict[str, list[dict[str, Any]]]:
    """Each model's record of ``clip_id``, by condition."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get(CONDITION) and clip_of(r["id"], r[CONDITION]) == clip_id:
            out.setdefault(r[CONDITION], []).append(dict(r))
    return out


@dataclass(frozen=True)
class Heard:
    """One clip under one condition as the models heard it: WAV bytes, or why not."""

    condition: str
    wav: bytes | None
    error: str | None = None


def heard(run: Path, clip_id: str) -> list[Heard]:
    """``clip_id`` under each of the run's conditions, as the models heard it: the run's
    dataset and conditions registry are read again from its config. A clip that cannot be
    made again (the dataset moved, a noise file gone) says why in place of its audio."""
    config = RunDir(run).read_config()
    try:
        samples = load_dataset_spec(config.dataset, config.samples, config.seed)
        items = [i for i in config.work_items(samples)
                 if isinstance(i, ConditionedSample) and i.clip_id == clip_id]
    except (DatasetError, ConditionError, OSError, ValueError) as exc:
        why = f"the run's dataset cannot be read again: {exc}"
        return [Heard(c, None, why) for c in config.conditions]
    out = []
    for item in items:
        try:
            out.append(Heard(condition_of(item) or CLEAN, wav_bytes(item.load_audio())))
        except (AudioError, ConditionError) as exc:
            out.append(Heard(condition_of(item) or CLEAN, None, str(exc)))
    return out
