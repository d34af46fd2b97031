"""WER and CER by slice: any manifest column, clip length, language, dataset.

"Did the fine-tune help Québécois speakers or only Parisian ones?" is a WER per
value of a column, with an interval, and with a baseline the paired change and
verdict per slice. Many slices make some "significant" by chance, so each
verdict also carries a Holm-adjusted flag (family: every slice comparison of the
table). A slice with fewer than ``MIN_SAMPLES`` samples says so instead of a
verdict. Scores come from the samples already scored (:class:`core.metrics.
SampleScore`): a slice is a subset of the same utterances, never a re-scoring.
"""

from __future__ import annotations

from core.confidence import paired_change, wer_interval
from core.languages import language_key
from core.metrics import SampleScore
from core.phrasing import percent, percent_span

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

MIN_SAMPLES = 10  # below this a slice's interval is too wide for a verdict
ALPHA = 0.05
LENGTH = "length"
LANGUAGE = "language"
DATASET = "dataset"
ALWAYS = (LENGTH, LANGUAGE, DATASET)  # sliced in every report
# Clip-length buckets (seconds): lower bound included, upper excluded.
LENGTH_BUCKETS = ((0.0, 3.0, "< 3 s"), (3.0, 10.0, "3–10 s"), (10.0, 30.0, "10–30 s"),
                  (30.0, math.inf, "> 30 s"))


def length_bucket(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return next(label for low, high, label in LENGTH_BUCKETS if low <= seconds < high)


def slice_value(row: Mapping[str, Any], column: str) -> str | None:
    """A sample's value in ``column``: its length bucket, language, dataset, or any other
    field of its record (manifest columns are carried there, and under ``extra``)."""
    if column == LENGTH:
        return length_bucket(row.get("duration"))
    if column == LANGUAGE:
        return language_key(row.get("language"))
    value = row.get(column)
    if value is None:
        value = (row.get("extra") or {}).get(column)
    return None if value in (None, "") else str(value)


@dataclass
class SliceRow:
    """One model on one slice; with a baseline, its paired change there."""

    column: str
    value: str
    model: str
    samples: int
    wer: float | None
    wer_ci: list[float] | None
    cer: float | None
    delta_wer: float | None = None
    delta_wer_ci: list[float] | None = None
    p_value: float | None = None
    significant: bool | None = None  # the change's 95 % interval excludes 0
    significant_adjusted: bool | None = None  # still significant after Holm's adjustment
    verdict: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _wer(chosen: Sequence[SampleScore]) -> float:
    return sum(s.word_errors for s in chosen) / max(sum(s.ref_words for s in chosen), 1)


def slice_table(scored: Mapping[str, Sequence[SampleScore]], rows: Mapping[str, Mapping[str, Any]],
                by: Sequence[str] = (), baseline: str | None = None,
                min_samples: int = MIN_SAMPLES) -> list[SliceRow]:
    """Every model's WER/CER per value of each column in ``by`` and of :data:`ALWAYS`
    (columns where every sample has the same value, or none, are left out). ``scored``:
    each model's scored samples; ``rows``: each sample's record fields by id."""
    columns = list(dict.fromkeys([*by, *ALWAYS]))
    out: list[SliceRow] = []
    base = {s.id: s for s in scored.get(baseline, ())} if baseline else {}
    for column in columns:
        values = {i: slice_value(r, column) for i, r in rows.items()}
        present = sorted({v for v in values.values() if v is not None}, key=_order(column))
        if len(present) < 2 and column in ALWAYS and column not in by:
            continue
        for value in present:
            for model, samples in scored.items():
                chosen = [s for s in samples if values.get(s.id) == value]
                if not chosen:
                    continue
                ci = wer_interval([s.word_errors for s in chosen], [s.ref_words for s in chosen])
                row = SliceRow(column, value, model, len(chosen), _wer(chosen),
                               ci.as_list() if ci else None,
                               sum(s.char_errors for s in chosen)
                               / max(sum(s.ref_chars for s in chosen), 1))
                if base and model != baseline:
                    _compare(row, [(base[s.id], s) for s in chosen if s.id in base], min_samples)
                out.append(row)
    _holm(out)
    return out


def _order(column: str) -> Any:
    if column == LENGTH:
        labels = [label for _, _, label in LENGTH_BUCKETS]
        return lambda v: labels.index(v) if v in labels else len(labels)
    return lambda v: v


def _compare(row: SliceRow, pairs: list[tuple[SampleScore, SampleScore]],
             min_samples: int) -> None:
    if len(pairs) < min_samples:
        row.verdict = f"too few samples ({len(pairs)} < {min_samples})"
        return
    delta = paired_change(pairs)
    assert delta is not None
    row.delta_wer, row.delta_wer_ci = delta.value, delta.as_list()
    row.p_value, row.significant = delta.p_value, delta.excludes_zero


def _holm(rows: list[SliceRow]) -> None:
    """Holm–Bonferroni over every comparison of the table: the i-th smallest p-value is
    held against ``ALPHA / (m - i)``; once one fails, every larger one does."""
    tested = sorted((r for r in rows if r.p_value is not None), key=lambda r: r.p_value or 0)
    m, holding = len(tested), True
    for i, row in enumerate(tested):
        holding = holding and (row.p_value or 1.0) <= ALPHA / (m - i)
        row.significant_adjusted = bool(holding and row.significant)
        if not row.significant:
            row.verdict = "no significant difference"
        elif row.significant_adjusted:
            row.verdict = "better" if (row.delta_wer or 0) < 0 else "worse"
        else:
            row.verdict = (f"{'better' if (row.delta_wer or 0) < 0 else 'worse'} "
                           "(not after adjusting for the number of slices)")


def render(rows: Sequence[SliceRow]) -> str:
    """The slice table as ``ert score --by`` prints it (WER in %)."""
    lines = [f"{'slice':28} {'model':28} {'n':>5} {'WER %':>6} {'95 %':>12} {'ΔWER':>6}  verdict"]
    for r in rows:
        ci = percent_span(r.wer_ci)
        delta = "" if r.delta_wer is None else f"{100 * r.delta_wer:+.1f}"
        lines.append(f"{(r.column + '=' + r.value)[:28]:28} {r.model[:28]:28} {r.samples:5d} "
                     f"{percent(r.wer):>6} {ci:>12} {delta:>6}  {r.verdict or ''}")
    return "\n".join(lines)
