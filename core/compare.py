"""Comparing runs and models: tables, baseline-vs-candidate deltas, per-sample diffs.

Everything reads the files a run wrote (``consolidated_*``), so a run from
another machine, copied into ``runs/``, compares like a local one.
"""

from __future__ import annotations

from core.evaluation.run_dir import RunDir, run_dirs
from core.metrics import align, quality_band, relative_change
from core.scoring import Prediction, score_predictions

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METRICS = ("wer", "cer", "bleu", "chrf", "rtfx", "success_rate", "peak_rss_gb",
           "mean_latency_s")
LOWER_IS_BETTER = {"wer", "cer", "peak_rss_gb", "mean_latency_s"}


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    path: Path
    dataset: str
    samples: int
    created: str
    models: list[str]
    normalizer: dict[str, Any] | None = None  # None: scored before ERT recorded it


def list_runs(out_dir: str | Path | None = None) -> list[RunInfo]:
    """Runs with consolidated results, newest first (default: :func:`core.paths.runs_dir`)."""
    runs = []
    for run in run_dirs(out_dir):
        data = run.read_consolidated()
        if data is None:
            continue
        runs.append(RunInfo(run.name, run.path, str(data.get("dataset", "")),
                            int(data.get("samples") or 0), str(data.get("created", "")),
                            list(data.get("models", {})), data.get("normalizer")))
    return runs


def normalizer_warning(runs: list[RunInfo]) -> str | None:
    """A sentence when the runs were scored with different text normalizers (their WERs
    are then not comparable until re-scored with ``ert score RUN --write``)."""
    kinds = {json.dumps(r.normalizer, sort_keys=True) for r in runs}
    if len(kinds) <= 1:
        return None
    names = ", ".join(f"{r.run_id}: {(r.normalizer or {}).get('version', 'unrecorded')}"
                      for r in runs)
    return (f"These runs were scored with different text normalizers ({names}); their WER "
            "and CER are not comparable. Re-score them with `ert score RUN --write`.")


def model_rows(runs: list[RunInfo]) -> list[dict[str, Any]]:
    """One row per (run, model) with every metric; WER/CER in percent with their
    95 % interval (``wer_low``/``wer_high``)."""
    rows = []
    for run in runs:
        for model, m in RunDir(run.path).read_summaries().items():
            row: dict[str, Any] = {"run": run.run_id, "model": model, "status": m.status,
                                   "samples": m.samples}
            for metric in METRICS:
                value = getattr(m, metric)
                if value is not None and metric in {"wer", "cer", "success_rate"}:
                    value = 100 * value
                row[metric] = value
            low, high = m.wer_ci or (None, None)
            row["wer_low"] = 100 * low if low is not None else None
            row["wer_high"] = 100 * high if high is not None else None
            row["skipped"] = m.skipped
            row["decoding"] = m.decoding
            row["band"] = m.band
            row["batch_size"] = m.batch_size
            rows.append(row)
    return rows


def detailed_rows(run: RunInfo | Path) -> list[dict[str, Any]]:
    return RunDir(run.path if isinstance(run, RunInfo) else run).read_detailed()


@dataclass
class Delta:
    metric: str
    baseline: float | None
    candidate: float | None
    change_pct: float | None
    better: bool | None


def compare_models(rows: list[dict[str, Any]], baseline: str, candidate: str
                   ) -> dict[str, Any]:
    """Deltas, the paired verdict, samples that got better/worse, and per-language verdicts."""
    base = [r for r in rows if r["model"] == baseline and _scored(r)]
    cand = {r["id"]: r for r in rows if r["model"] == candidate and _scored(r)}
    pairs = [(b, cand[b["id"]]) for b in base if b["id"] in cand]
    if not pairs:
        return {"deltas": [], "better": [], "worse": [], "languages": [], "pairs": 0,
                "verdict": None}

    def predictions(chosen: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[Prediction]:
        return [Prediction(side["model"], side["id"], side["reference"], side["hypothesis"],
                           side.get("language")) for pair in chosen for side in pair]

    scores = score_predictions(predictions(pairs), baseline)
    b_scores, c_scores = scores[baseline], scores[candidate]
    deltas = []
    for metric in ("wer", "cer", "bleu", "chrf"):
        bv, cv = getattr(b_scores, metric), getattr(c_scores, metric)
        change = relative_change(cv, bv)
        better = None if bv == cv else (cv < bv) == (metric in LOWER_IS_BETTER)
        deltas.append(Delta(metric, bv, cv, change, better))
    moved = []
    for b, c in pairs:
        bw = b.get("wer") if b.get("wer") is not None else 0.0
        cw = c.get("wer") if c.get("wer") is not None else 0.0
        if bw != cw:
            moved.append({"id": b["id"], "language": b.get("language"),
                          "reference": b["reference"], "baseline": b["hypothesis"],
                          "candidate": c["hypothesis"], "baseline_wer": bw,
                          "candidate_wer": cw, "delta": cw - bw})
    languages = []
    for lang in sorted({b.get("language") or "?" for b, _ in pairs}):
        chosen = [(b, c) for b, c in pairs if (b.get("language") or "?") == lang]
        verdict = score_predictions(predictions(chosen), baseline)[candidate].comparison
        assert verdict is not None
        languages.append({"language": lang, "samples": len(chosen),
                          "baseline_wer": 100 * verdict.baseline_wer,
                          "candidate_wer": 100 * verdict.candidate_wer,
                          "change_pct": relative_change(verdict.candidate_wer,
                                                        verdict.baseline_wer),
                          "verdict": verdict.sentence(),
                          "baseline_band": quality_band(verdict.baseline_wer).value,
                          "candidate_band": quality_band(verdict.candidate_wer).value})
    return {"deltas": deltas, "pairs": len(pairs), "languages": languages,
            "verdict": c_scores.comparison,
            "better": sorted((m for m in moved if m["delta"] < 0), key=lambda m: m["delta"]),
            "worse": sorted((m for m in moved if m["delta"] > 0), key=lambda m: -m["delta"])}


def _scored(row: dict[str, Any]) -> bool:
    return not row.get("error") and not row.get("skipped")


_STYLE = {"substitute": "background:#fde68a", "delete": "background:#fecaca;text-decoration:"
          "line-through", "insert": "background:#bbf7d0"}


def highlight(reference: str, hypothesis: str, language: str | None = None) -> str:
    """HTML of the hypothesis against the reference: substitutions in yellow (with the
    reference word), deletions struck through in red, insertions in green."""
    parts = []
    for op in align(reference, hypothesis, language).ops:
        ref, hyp = html.escape(" ".join(op.ref)), html.escape(" ".join(op.hyp))
        if op.kind == "equal":
            parts.append(hyp)
        elif op.kind == "substitute":
            parts.append(f'<span style="{_STYLE["substitute"]}" title="reference: {ref}">'
                         f"{hyp}</span>")
        elif op.kind == "delete":
            parts.append(f'<span style="{_STYLE["delete"]}">{ref}</span>')
        else:
            parts.append(f'<span style="{_STYLE["insert"]}">{hyp}</span>')
    return " ".join(parts)


def to_csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
