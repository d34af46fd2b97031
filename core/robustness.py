"""How each model's WER degrades under a run's robustness conditions (core.conditions).

A fine-tuner asks two things of a run over conditions: how much worse does each model get
as the audio does, and did the fine-tune trade clean-speech gains for robustness. So, per
model and condition: WER and CER with 95 % intervals; the WER change against clean on the
same clips, paired (the clips' own difficulty cancels out), with its interval; a one-line
summary per model (mean degradation over the conditions, and for noise the SNR at which
the clean WER doubles); with a baseline, the candidate's verdict per condition, from
:func:`core.slices.slice_table` (the owner of per-slice verdicts and their Holm
adjustment). Everything comes from samples already scored, like slices: a condition is a
subset of the run's utterances, never a re-scoring.
"""

from __future__ import annotations

from core import slices
from core.conditions import CLEAN, clip_of, split_label
from core.confidence import paired_change, wer_interval
from core.metrics import SampleScore
from core.phrasing import percent, percent_span

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

CONDITION = "condition"  # the record field (and `ert score --by` column) conditions live in
SNR = "snr"


@dataclass
class ConditionRow:
    """One model under one condition; against clean, the paired change on the same clips;
    with a baseline, the change against it under the same condition."""

    model: str
    condition: str
    name: str  # "noise" of "noise:snr=10"
    parameter: str | None
    severity: float | None
    samples: int
    wer: float
    wer_ci: list[float] | None
    cer: float
    cer_ci: list[float] | None
    clean_pairs: int = 0  # clips scored both clean and under this condition
    clean_wer: float | None = None  # on those clips
    delta_wer: float | None = None  # WER under the condition minus clean (positive: worse)
    delta_wer_ci: list[float] | None = None
    degraded: bool | None = None  # the change's interval lies above 0
    baseline: dict[str, Any] | None = None  # {model, delta_wer, delta_wer_ci, verdict, …}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sums(samples: Sequence[SampleScore]) -> tuple[float, float]:
    return (sum(s.word_errors for s in samples) / max(sum(s.ref_words for s in samples), 1),
            sum(s.char_errors for s in samples) / max(sum(s.ref_chars for s in samples), 1))


def _ci(errors: Sequence[int], units: Sequence[int]) -> list[float] | None:
    interval = wer_interval(errors, units)
    return interval.as_list() if interval else None


def ordered_conditions(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The conditions of ``rows``: clean first, then each condition name in the order it
    first appears, its severities in that order too (a run lists them as it was asked)."""
    seen = list(dict.fromkeys(r.get(CONDITION) for r in rows.values() if r.get(CONDITION)))
    names = list(dict.fromkeys(split_label(c)[0] for c in seen if c != CLEAN))
    rest = sorted((c for c in seen if c != CLEAN),
                  key=lambda c: (names.index(split_label(c)[0]), seen.index(c)))
    return ([CLEAN] if CLEAN in seen else []) + rest


def condition_table(scored: Mapping[str, Sequence[SampleScore]],
                    rows: Mapping[str, Mapping[str, Any]], baseline: str | None = None
                    ) -> list[ConditionRow]:
    """Every model under every condition of ``rows`` (each sample's record fields by id)."""
    order = ordered_conditions(rows)
    condition = {i: r.get(CONDITION) for i, r in rows.items()}
    versus = _baseline_rows(scored, condition, baseline)
    out: list[ConditionRow] = []
    for model, samples in scored.items():
        by_condition: dict[str, list[SampleScore]] = {}
        for s in samples:
            if condition.get(s.id):
                by_condition.setdefault(str(condition[s.id]), []).append(s)
        clean = {s.id: s for s in by_condition.get(CLEAN, [])}
        for label in order:
            chosen = by_condition.get(label)
            if not chosen:
                continue
            name, parameter, severity = split_label(label)
            wer, cer = _sums(chosen)
            row = ConditionRow(
                model, label, name, parameter, severity, len(chosen), wer,
                _ci([s.word_errors for s in chosen], [s.ref_words for s in chosen]), cer,
                _ci([s.char_errors for s in chosen], [s.ref_chars for s in chosen]),
                baseline=versus.get((model, label)))
            if label != CLEAN:
                _degradation(row, [(clean[c], s) for s in chosen
                                   if (c := clip_of(s.id, label)) in clean])
            out.append(row)
    return out


def _degradation(row: ConditionRow, pairs: list[tuple[SampleScore, SampleScore]]) -> None:
    """The paired WER change from clean to the condition, clip by clip."""
    if not pairs:
        return
    delta = paired_change(pairs)
    assert delta is not None
    row.clean_pairs = len(pairs)
    row.clean_wer = _sums([c for c, _ in pairs])[0]
    row.delta_wer, row.delta_wer_ci = delta.value, delta.as_list()
    row.degraded = delta.low > 0


def _baseline_rows(scored: Mapping[str, Sequence[SampleScore]],
                   condition: Mapping[str, Any], baseline: str | None
                   ) -> dict[tuple[str, str], dict[str, Any]]:
    """Each candidate's change against ``baseline`` per condition, as the slice table
    makes it (paired on the same work items, Holm-adjusted over the conditions)."""
    if baseline is None or baseline not in scored or len(scored) < 2:
        return {}
    by_condition = {i: {CONDITION: c} for i, c in condition.items() if c}
    table = slices.slice_table(scored, by_condition, by=[CONDITION], baseline=baseline)
    return {(r.model, r.value): {"model": baseline, "delta_wer": r.delta_wer,
                                 "delta_wer_ci": r.delta_wer_ci, "p_value": r.p_value,
                                 "significant_adjusted": r.significant_adjusted,
                                 "verdict": r.verdict}
            for r in table if r.column == CONDITION and r.model != baseline}


def mean_degradation(samples: Sequence[tuple[SampleScore, Mapping[str, Any]]]
                     ) -> float | None:
    """One model's mean WER change from clean over the conditions its samples were heard
    under, each on the clips scored both ways (what :func:`summaries` reports); None
    without a condition to compare. ``samples``: (scored sample, record fields) pairs."""
    by_condition: dict[str, dict[str, SampleScore]] = {}
    for sample, fields in samples:
        label = fields.get(CONDITION)
        if label:
            by_condition.setdefault(str(label), {})[clip_of(sample.id, str(label))] = sample
    clean = by_condition.pop(CLEAN, {})
    deltas = []
    for chosen in by_condition.values():
        pairs = [(clean[c], s) for c, s in chosen.items() if c in clean]
        if pairs:
            deltas.append(_sums([s for _, s in pairs])[0] - _sums([c for c, _ in pairs])[0])
    return sum(deltas) / len(deltas) if deltas else None


def snr_at_double_wer(points: Sequence[tuple[float, float]], clean_wer: float
                      ) -> tuple[float | None, str]:
    """The SNR at which the WER reaches twice ``clean_wer``, interpolated linearly between
    the two SNRs tested on either side of it; ``points`` are (SNR dB, WER). None, with the
    reason, when it is not within the SNRs tested."""
    if clean_wer <= 0:
        return None, "clean WER is 0"
    target = 2 * clean_wer
    ordered = sorted(points, reverse=True)  # cleanest first
    if not ordered:
        return None, "no SNR tested"
    if ordered[0][1] >= target:
        return None, f"doubled already at {ordered[0][0]:g} dB"
    for (high, wer_high), (low, wer_low) in zip(ordered, ordered[1:], strict=False):
        if wer_low >= target:
            return high + (target - wer_high) * (low - high) / (wer_low - wer_high), ""
    return None, f"not doubled down to {ordered[-1][0]:g} dB"


def summaries(table: Sequence[ConditionRow]) -> dict[str, dict[str, Any]]:
    """Per model: its clean WER, mean degradation over the conditions against clean, the
    worst condition, the SNR at which each noise doubles its WER, and a line that says it."""
    out: dict[str, dict[str, Any]] = {}
    for model in dict.fromkeys(r.model for r in table):
        mine = [r for r in table if r.model == model]
        clean = next((r for r in mine if r.condition == CLEAN), None)
        changed = [r for r in mine if r.delta_wer is not None]
        mean = sum(r.delta_wer or 0.0 for r in changed) / len(changed) if changed else None
        worst = max(changed, key=lambda r: r.delta_wer or 0.0) if changed else None
        doubling: dict[str, dict[str, Any]] = {}
        if clean is not None:
            for name in dict.fromkeys(r.name for r in mine if r.parameter == SNR):
                points = [(float(r.severity), r.wer) for r in mine
                          if r.name == name and r.severity is not None]
                snr, note = snr_at_double_wer(points, clean.wer)
                doubling[name] = {"snr": snr, "note": note}
        out[model] = {"clean_wer": clean.wer if clean else None, "conditions": len(changed),
                      "mean_degradation": mean,
                      "worst": ({"condition": worst.condition, "delta_wer": worst.delta_wer}
                                if worst else None),
                      "snr_doubling": doubling,
                      "line": _line(model, clean, mean, len(changed), worst, doubling)}
    return out


def _line(model: str, clean: ConditionRow | None, mean: float | None, count: int,
          worst: ConditionRow | None, doubling: Mapping[str, Mapping[str, Any]]) -> str:
    if clean is None:
        return f"{model}: no clean clips in the run, so no degradation to measure"
    parts = [f"{model}: WER {100 * clean.wer:.1f} % clean"]
    if mean is not None and worst is not None:
        parts.append(f"mean degradation {100 * mean:+.1f} points over {count} "
                     f"condition{'s' if count != 1 else ''} (worst {worst.condition} "
                     f"{100 * (worst.delta_wer or 0):+.1f})")
    for name, found in doubling.items():
        parts.append(f"{name}: WER doubles at {found['snr']:.1f} dB SNR" if found["snr"]
                     is not None else f"{name}: {found['note']}")
    return "; ".join(parts)


def report(scored: Mapping[str, Sequence[SampleScore]], rows: Mapping[str, Mapping[str, Any]],
           baseline: str | None = None) -> dict[str, Any] | None:
    """The ``conditions`` report of a run or of ``ert score``: ``conditions`` (in order),
    ``rows`` (:class:`ConditionRow` dicts), ``models`` (:func:`summaries`); None when no
    sample was heard under a condition."""
    if not any(r.get(CONDITION) for r in rows.values()):
        return None
    table = condition_table(scored, rows, baseline)
    return {"conditions": ordered_conditions(rows), "baseline": baseline,
            "rows": [r.to_dict() for r in table], "models": summaries(table)}


def csv_rows(conditions: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``conditions.csv``: a row per model and condition, intervals as low/high columns."""
    out = []
    for r in conditions.get("rows", []):
        versus = r.get("baseline") or {}
        row = {k: v for k, v in r.items() if k not in ("wer_ci", "cer_ci", "delta_wer_ci",
                                                       "baseline")}
        for name in ("wer", "cer", "delta_wer"):
            low, high = r.get(f"{name}_ci") or (None, None)
            row[f"{name}_low"], row[f"{name}_high"] = low, high
        low, high = versus.get("delta_wer_ci") or (None, None)
        row.update(baseline=versus.get("model"), vs_baseline_delta_wer=versus.get("delta_wer"),
                   vs_baseline_low=low, vs_baseline_high=high,
                   vs_baseline_verdict=versus.get("verdict"))
        out.append(row)
    return out


def render(conditions: Mapping[str, Any]) -> str:
    """The conditions table and summary lines as ``ert score`` and ``ert evaluate`` print
    them (WER in %)."""
    lines = [f"{'model':28} {'condition':24} {'n':>4} {'WER %':>6} {'95 %':>11} "
             f"{'CER %':>6} {'vs clean':>8} {'95 %':>13}  vs baseline"]
    for r in conditions.get("rows", []):
        delta = "" if r["delta_wer"] is None else f"{100 * r['delta_wer']:+.1f}"
        versus = r.get("baseline") or {}
        verdict = versus.get("verdict") or ""
        if versus.get("delta_wer") is not None:
            verdict = f"{100 * versus['delta_wer']:+.1f} {verdict}"
        lines.append(f"{r['model'][:28]:28} {r['condition'][:24]:24} {r['samples']:4d} "
                     f"{percent(r['wer']):>6} {percent_span(r['wer_ci']):>11} "
                     f"{percent(r['cer']):>6} "
                     f"{delta:>8} {percent_span(r['delta_wer_ci'], True) if delta else '':>13}  "
                     f"{verdict}".rstrip())
    lines += [m["line"] for m in conditions.get("models", {}).values()]
    return "\n".join(lines)
