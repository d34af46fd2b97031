"""Comparing runs and models: tables, baseline-vs-candidate deltas, per-sample diffs.

Everything reads the files a run wrote (``consolidated_*``), so a run from
another machine, copied into ``runs/``, compares like a local one.
"""

from __future__ import annotations

from core.evaluation.results import latest
from core.metrics import align, quality_band, relative_change, score

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


def list_runs(out_dir: str | Path = "runs") -> list[RunInfo]:
    """Runs with consolidated results, newest first."""
    runs = []
    for folder in sorted(Path(out_dir).glob("*"), reverse=True):
        path = latest(folder, "consolidated_results") if folder.is_dir() else None
        if path is None:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        runs.append(RunInfo(folder.name, folder, str(data.get("dataset", "")),
                            int(data.get("samples") or 0), str(data.get("created", "")),
                            list(data.get("models", {}))))
    return runs


def model_rows(runs: list[RunInfo]) -> list[dict[str, Any]]:
    """One row per (run, model) with every metric; WER/CER in percent."""
    rows = []
    for run in runs:
        data = json.loads(latest(run.path, "consolidated_results").read_text())  # type: ignore[union-attr]
        for model, m in data["models"].items():
            row = {"run": run.run_id, "model": model, "status": m.get("status"),
                   "samples": m.get("samples")}
            for metric in METRICS:
                value = m.get(metric)
                if value is not None and metric in {"wer", "cer", "success_rate"}:
                    value = 100 * value
                row[metric] = value
            row["band"] = m.get("band")
            row["batch_size"] = m.get("batch_size")
            rows.append(row)
    return rows


def detailed_rows(run: RunInfo | Path) -> list[dict[str, Any]]:
    path = latest(run.path if isinstance(run, RunInfo) else Path(run), "consolidated_detailed")
    return json.loads(path.read_text()) if path else []


@dataclass
class Delta:
    metric: str
    baseline: float | None
    candidate: float | None
    change_pct: float | None
    better: bool | None


def compare_models(rows: list[dict[str, Any]], baseline: str, candidate: str
                   ) -> dict[str, Any]:
    """Deltas, samples that got better/worse, and the per-language breakdown."""
    base = [r for r in rows if r["model"] == baseline and not r.get("error")]
    cand = {r["id"]: r for r in rows if r["model"] == candidate and not r.get("error")}
    pairs = [(b, cand[b["id"]]) for b in base if b["id"] in cand]
    if not pairs:
        return {"deltas": [], "better": [], "worse": [], "languages": [], "pairs": 0}

    def corpus(side: int) -> Any:
        chosen = [p[side] for p in pairs]
        return score([r["reference"] for r in chosen], [r["hypothesis"] for r in chosen],
                     [r.get("language") for r in chosen])

    b_scores, c_scores = corpus(0), corpus(1)
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
        lang_code = None if lang == "?" else lang
        bw = score([b["reference"] for b, _ in chosen], [b["hypothesis"] for b, _ in chosen],
                   lang_code).wer
        cw = score([c["reference"] for _, c in chosen], [c["hypothesis"] for _, c in chosen],
                   lang_code).wer
        languages.append({"language": lang, "samples": len(chosen), "baseline_wer": 100 * bw,
                          "candidate_wer": 100 * cw, "change_pct": relative_change(cw, bw),
                          "baseline_band": quality_band(bw).value,
                          "candidate_band": quality_band(cw).value})
    return {"deltas": deltas, "pairs": len(pairs), "languages": languages,
            "better": sorted((m for m in moved if m["delta"] < 0), key=lambda m: m["delta"]),
            "worse": sorted((m for m in moved if m["delta"] > 0), key=lambda m: -m["delta"])}


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
