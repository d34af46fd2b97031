"""Comparing runs and models: tables, baseline-vs-candidate deltas, per-sample diffs.

Everything reads the files a run wrote (``consolidated_*``), so a run from
another machine, copied into ``runs/``, compares like a local one.
"""

from __future__ import annotations

from core.evaluation.run_dir import DETAILED, RunDir, run_dirs
from core.evaluation.summary import ModelSummary, speed_label, status_label
from core.figures import FIGURES
from core.metrics import align, quality_band, relative_change
from core.phrasing import MISSING, percent_span
from core.scoring import Prediction, score_predictions

import functools
import html
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METRICS = ("wer", "cer", "bleu", "chrf", "rtfx", "success_rate", "peak_rss_gb",
           "mean_latency_s")
LOWER_IS_BETTER = {"wer", "cer", "peak_rss_gb", "mean_latency_s", "mean_compute_s"}
# Data (rows, CSV, JSON) holds fractions under the result files' own names; only what is shown
# is in percent, with the unit in its label.
PERCENT = {"wer", "wer_low", "wer_high", "cer", "success_rate", "baseline_wer",
           "candidate_wer", "delta", "delta_wer"}
LABELS = {
    "run": "run", "dataset": "dataset", "model": "model", "status": "status",
    "language": "language", "wer": "WER %", "wer_ci": "WER 95 % interval",
    "wer_low": "WER 95 % low", "wer_high": "WER 95 % high", "cer": "CER %", "bleu": "BLEU",
    "chrf": "chrF", "rtfx": "RTFx", "rtfx_end_to_end": "RTFx end to end",
    "success_rate": "success %", "peak_rss_gb": "peak RAM GB", "mean_latency_s": "latency s",
    "mean_compute_s": "compute s / clip", "band": "WER band", "samples": "samples",
    "scored": "scored on", "timed": "timed", "cached": "cached", "failures": "failed",
    "skipped": "skipped",
    "decoding": "decoding", "batch_size": "batch size", "error": "error",
    "baseline_wer": "baseline WER %",
    "candidate_wer": "candidate WER %", "change_pct": "change % (relative)",
    "delta": "WER change (points)",
    "verdict": "verdict", "baseline_band": "baseline band", "candidate_band": "candidate band",
    "slice": "slice", "candidate": "candidate", "delta_wer": "WER change (points)",
    "condition": "condition", "delta_ci": "change 95 % interval", "vs_baseline": "vs baseline",
}


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
    """One row per (run, model), in the consolidated file's names and units (fractions):
    the CSV export says what the JSON says. ``wer_low``/``wer_high`` are its ``wer_ci``."""
    return [{"run": run.run_id, "dataset": run.dataset, **summary_row(m)}
            for run in runs for m in RunDir(run.path).read_summaries().values()]


def summary_row(m: ModelSummary) -> dict[str, Any]:
    """One model's figures as a row (fractions, the result files' names), for every table."""
    low, high = m.wer_ci or (None, None)
    return {"model": m.model, "status": status_label(m), "wer": m.wer, "wer_low": low,
            "wer_high": high, "cer": m.cer, "bleu": m.bleu, "chrf": m.chrf, "rtfx": m.rtfx,
            "rtfx_end_to_end": m.rtfx_end_to_end,
            "success_rate": m.success_rate if m.samples else None, "scored": m.succeeded,
            "peak_rss_gb": m.peak_rss_gb, "mean_latency_s": m.mean_latency_s,
            "mean_compute_s": m.mean_compute_s, "band": m.band, "samples": m.samples,
            "timed": m.timed, "cached": m.cached, "failures": m.failures, "skipped": m.skipped,
            "decoding": m.decoding, "batch_size": m.batch_size, "error": m.error,
            **{name: m.figures.get(name) for name in FIGURES if name not in ("wer", "cer")}}


def with_figures(columns: Iterable[str]) -> list[str]:
    """A table's columns followed by every registered figure (core.figures) not among them:
    a new figure shows in every table without editing it."""
    columns = list(columns)
    return columns + [name for name in FIGURES if name not in columns]


def speed_labels(runs: list[RunInfo]) -> dict[tuple[str, str], str]:
    """Each (run, model)'s RTFx in words (``12.3 on 10 of 24 clips``, ``— (all cached)``)."""
    return {(run.run_id, model): speed_label(m) for run in runs
            for model, m in RunDir(run.path).read_summaries().items()}


def language_rows(runs: list[RunInfo]) -> list[dict[str, Any]]:
    """One row per (run, model, language) for every model scored in more than one language
    (fractions, like :func:`model_rows`)."""
    rows = []
    for run in runs:
        for model, m in RunDir(run.path).read_summaries().items():
            if len(m.languages) < 2:
                continue
            for language, figures in m.languages.items():
                low, high = figures.get("wer_ci") or (None, None)
                rows.append({"run": run.run_id, "model": model, "language": language,
                             "samples": figures.get("samples"), "wer": figures.get("wer"),
                             "wer_low": low, "wer_high": high, "cer": figures.get("cer")})
    return rows


# A clip across runs: two runs' "en_003" are the same clip only if they share its reference.
SampleKey = tuple[str, str]
Pair = tuple[str, str]  # (run id, model)


def scored_samples(runs: list[RunInfo], models: Iterable[str] | None = None
                   ) -> dict[Pair, dict[SampleKey, Prediction]]:
    """What each (run, model) was scored on: its transcribed samples (not failed, not
    skipped), keyed by sample id and reference. Models without one are left out."""
    wanted = None if models is None else set(models)
    scored: dict[Pair, dict[SampleKey, Prediction]] = {}
    for run in runs:
        path = RunDir(run.path).latest(DETAILED)
        if path is None:
            continue
        stat = path.stat()
        for model, samples in _run_predictions(run.path, stat.st_mtime_ns, stat.st_size
                                               ).items():
            if wanted is None or model in wanted:
                scored[(run.run_id, model)] = samples
    return scored


@functools.lru_cache(maxsize=8)
def _run_predictions(run: Path, mtime_ns: int, size: int
                     ) -> dict[str, dict[SampleKey, Prediction]]:
    """A run's scored samples per model, read once per version of its detailed file (a
    15,360-sample run is megabytes of JSON; the Compare page asks on every rerun)."""
    del mtime_ns, size  # the cache key: a rewritten file is read again
    out: dict[str, dict[SampleKey, Prediction]] = {}
    for row in detailed_rows(run):
        if _scored(row):
            out.setdefault(row["model"], {})[(row["id"], row["reference"])] = Prediction(
                row["model"], row["id"], row["reference"], row["hypothesis"],
                row.get("language"))
    return out


def common_samples(scored: dict[Pair, dict[SampleKey, Prediction]]) -> set[SampleKey]:
    """The samples every (run, model) of ``scored`` was scored on."""
    sets = [set(samples) for samples in scored.values()]
    return set.intersection(*sets) if sets else set()


def samples_warning(scored: dict[Pair, dict[SampleKey, Prediction]]) -> str | None:
    """A sentence when the models were scored on different samples: their WERs then rank
    different clips (tiny.en on 40 English clips against base on 80 mixed ones), and the
    order can reverse on the clips both transcribed. None when they all share them."""
    if len({frozenset(samples) for samples in scored.values()}) <= 1:
        return None
    one_run = len({run for run, _ in scored}) == 1
    counts = ", ".join(f"{model if one_run else f'{model} · {run[-4:]}'} on {len(samples)}"
                       for (run, model), samples in scored.items())
    common = len(common_samples(scored))
    return (f"These models were scored on different samples ({counts}), so their WERs are "
            f"not comparable: each rests on other clips. {common} "
            f"{'sample is' if common == 1 else 'samples are'} common to all"
            + ("; score every model on those with \"On the common samples\"." if common
               else "."))


def rescore_on(rows: list[dict[str, Any]], scored: dict[Pair, dict[SampleKey, Prediction]],
               keys: set[SampleKey]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``rows`` (:func:`model_rows`) with WER, its interval, CER, BLEU, chrF and band scored
    again on ``keys`` only (through :func:`core.scoring.score_predictions`, as the run's own
    figures were), ``scored`` set to how many; and the per-language rows of those scores
    (:func:`language_rows`' shape). Speed, memory and success stay the whole run's."""
    out, languages = [], []
    for row in rows:
        chosen = [p for key, p in scored.get((row["run"], row["model"]), {}).items()
                  if key in keys]
        if not chosen:
            out.append(row)
            continue
        result = score_predictions(chosen)[row["model"]]
        low, high = result.wer_ci or (None, None)
        out.append({**row, "wer": result.wer, "wer_low": low, "wer_high": high,
                    "cer": result.cer, "bleu": result.bleu, "chrf": result.chrf,
                    "band": quality_band(result.wer).value, "scored": result.samples})
        if len(result.languages) > 1:
            for language, figures in result.languages.items():
                low, high = figures.wer_ci or (None, None)
                languages.append({"run": row["run"], "model": row["model"],
                                  "language": language, "samples": figures.samples,
                                  "wer": figures.wer, "wer_low": low, "wer_high": high,
                                  "cer": figures.cer})
    return out, languages


def missing(value: Any) -> bool:
    """None or NaN (what pandas makes of None in a float column)."""
    return value is None or (isinstance(value, float) and value != value)


def percent_interval(low: Any, high: Any) -> str:
    """``12.1–15.3`` from fractions, ``—`` when there is none."""
    return MISSING if missing(low) or missing(high) else percent_span((low, high))


def label(column: str) -> str:
    """A column's title: a registered figure's own label, else :data:`LABELS`'."""
    if column in LABELS:
        return LABELS[column]
    return FIGURES[column].label if column in FIGURES else column


def display_rows(rows: Iterable[dict[str, Any]], columns: Iterable[str]
                 ) -> list[dict[str, Any]]:
    """What a page shows of ``rows``: ``columns`` in that order, under their :data:`LABELS`,
    fractions as percentages and missing values as None (for a dash placeholder).
    ``wer_ci`` is the interval from ``wer_low`` and ``wer_high`` as text."""
    columns = list(columns)
    shown = []
    for row in rows:
        out: dict[str, Any] = {}
        for column in columns:
            if column == "wer_ci":
                value: Any = percent_interval(row.get("wer_low"), row.get("wer_high"))
            else:
                value = row.get(column)
                if missing(value):
                    value = None
                elif column in PERCENT:
                    value = 100 * value
                elif column in FIGURES:
                    value = value * FIGURES[column].scale
            out[label(column)] = value
        shown.append(out)
    return shown


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
    """Deltas, the paired verdict, samples that got better/worse, and per-language verdicts
    (WERs as fractions; ``change_pct`` is a relative change in percent)."""
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
                          "baseline_wer": verdict.baseline_wer,
                          "candidate_wer": verdict.candidate_wer,
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
    """The rows as CSV, every column of any row, a missing value (None or NaN) as an empty
    cell whatever pandas made of it, a list or dict as JSON text. The Compare page's export
    and a run folder's ``results.csv`` / ``samples.csv``."""
    import csv
    import io

    if not rows:
        return ""
    fields = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fields)
    # Plain values go as they are (None is an empty cell): 15,360 samples in 0.2 s, not 0.4.
    writer.writerows([v if type(v) in _PLAIN else _cell(v) for v in map(row.get, fields)]
                     for row in rows)
    return buffer.getvalue()


_PLAIN = {str, int, bool, type(None)}


def _cell(value: Any) -> Any:
    if missing(value):
        return ""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value
