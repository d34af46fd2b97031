"""Where and why models fail, from scored samples: slices, error anatomy, hallucinations.

One entry point for a run's results and for ``ert score``: both hand over the
scores :func:`core.scoring.score_predictions` made and each sample's record
fields, and get the same report (JSON-ready dicts).
"""

from __future__ import annotations

from core import error_anatomy, hallucinations, robustness, slices
from core.scoring import ModelScore, Prediction

from collections.abc import Mapping, Sequence
from typing import Any


def analyze(scores: Mapping[str, ModelScore], rows: Mapping[str, Mapping[str, Any]],
            by: Sequence[str] = (), baseline: str | None = None,
            decoded: Mapping[str, Mapping[str, str | None]] | None = None) -> dict[str, Any]:
    """The report: ``slices`` (every model per value of ``by``, length, language, dataset,
    with the baseline's paired change and adjusted verdicts), ``errors`` (each model's
    substitution pairs, deleted and inserted words), ``changed_words`` (per candidate, the
    words whose errors changed most against the baseline), ``hallucinations`` (per model),
    ``conditions`` (:func:`core.robustness.report`: per model and robustness condition, with
    the degradation against clean; None when the samples were heard under none).
    ``rows``: each sample's record fields by id; ``decoded``: per model, the language each
    sample was decoded in."""
    scored = {m: list(s.corpus.samples) for m, s in scores.items() if s.corpus is not None}
    decoded = decoded or {}
    report: dict[str, Any] = {
        "by": list(by),
        "slices": [r.to_dict() for r in slices.slice_table(
            scored, rows, by, baseline if baseline in scored else None)],
        "errors": {m: error_anatomy.anatomy(s).to_dict() for m, s in scored.items()},
        "hallucinations": {m: hallucinations.summarize(s, decoded.get(m)).to_dict()
                           for m, s in scored.items()},
        "changed_words": {},
        "conditions": robustness.report(scored, rows, baseline if baseline in scored else None)}
    if baseline in scored:
        report["changed_words"] = {
            m: [{"word": c.word, "baseline": c.baseline, "candidate": c.candidate,
                 "change": c.change}
                for c in error_anatomy.changed_words(scored[baseline], s)]
            for m, s in scored.items() if m != baseline}
    return report


def languages_table(report: Mapping[str, Any], baseline: str) -> list[dict[str, Any]]:
    """"Multilingual preserved": language · baseline WER · candidate WER · delta [interval]
    · verdict, one row per (candidate, language), from the report's language slices."""
    rows = [r for r in report.get("slices", []) if r["column"] == slices.LANGUAGE]
    base = {r["value"]: r for r in rows if r["model"] == baseline}
    return [{"language": r["value"], "candidate": r["model"], "samples": r["samples"],
             "baseline_wer": base[r["value"]]["wer"] if r["value"] in base else None,
             "candidate_wer": r["wer"], "delta_wer": r["delta_wer"],
             "delta_wer_ci": r["delta_wer_ci"], "verdict": r["verdict"]}
            for r in rows if r["model"] != baseline]


def analysis_of(predictions: Sequence[Prediction], scores: Mapping[str, ModelScore],
                by: Sequence[str] = (), baseline: str | None = None) -> dict[str, Any]:
    """:func:`analyze` over predictions read from files or a run: each row's fields are its
    slicing columns and its decoded language."""
    rows: dict[str, Mapping[str, Any]] = {}
    decoded: dict[str, dict[str, str | None]] = {}
    for p in predictions:
        rows.setdefault(p.id, {**p.fields, "language": p.language})
        decoded.setdefault(p.model, {})[p.id] = p.fields.get("decoded_language")
    return analyze(scores, rows, by, baseline, decoded)


def hallucination_lines(report: Mapping[str, Any]) -> str:
    """One line per model: its flagged samples and WER without them."""
    lines = []
    for model, h in report.get("hallucinations", {}).items():
        found = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in h["counts"].items()
                          if n) or "none"
        without = ("—" if h["wer_without_flagged"] is None
                   else f"{100 * h['wer_without_flagged']:.1f} %")
        lines.append(f"{model}: hallucinations {found} ({h['flagged']} of {h['samples']} "
                     f"samples); WER without them {without}")
    return "\n".join(lines)


def hallucination_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One table row per model: each flag's count, flagged samples, WER with and without."""
    rows = []
    for model, h in report.get("hallucinations", {}).items():
        pct = {k: None if h[k] is None else round(100 * h[k], 1)
               for k in ("wer", "wer_without_flagged")}
        rows.append({"model": model, **{k.replace("_", " "): n for k, n in h["counts"].items()},
                     "flagged": f"{h['flagged']} of {h['samples']}", "WER %": pct["wer"],
                     "WER % without them": pct["wer_without_flagged"]})
    return rows
