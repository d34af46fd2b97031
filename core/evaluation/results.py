"""Consolidating a run's logs into the seed's result files.

Scores come from :func:`core.metrics.score`, the one scoring function, over
the samples a model transcribed; failed samples count against the success
rate only. Cached transcripts are scored but left out of speed figures.
"""

from __future__ import annotations

from core.evaluation.config import MANIFEST_FILE
from core.evaluation.records import RunRecords
from core.metrics import quality_band, score

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class ModelSummary:
    model: str
    batch: str
    status: str
    samples: int
    succeeded: int
    failures: int
    success_rate: float
    wer: float | None
    cer: float | None
    bleu: float | None
    chrf: float | None
    rtfx: float | None
    mean_latency_s: float | None
    band: str | None
    batch_size: int | None
    batch_curve: list[dict[str, float]]
    peak_rss_gb: float | None
    peak_gpu_gb: float | None
    load_seconds: float | None
    error: str | None


def summarize(records: RunRecords, models: list[str] | None = None,
              expected_samples: int | None = None
              ) -> tuple[dict[str, ModelSummary], list[dict[str, Any]]]:
    """Per-model summaries and per-sample rows (with normalized texts and scores)."""
    rows = records.sample_rows()
    statuses = records.last_model_status()
    order = models or list(dict.fromkeys([r["model"] for r in rows] + list(statuses)))
    summaries: dict[str, ModelSummary] = {}
    detailed: list[dict[str, Any]] = []
    for model in order:
        mine = [r for r in rows if r["model"] == model]
        ok = [r for r in mine if r["error"] is None]
        scores = score([r["reference"] for r in ok], [r["hypothesis"] for r in ok],
                       [r.get("language") for r in ok], ids=[r["id"] for r in ok]) if ok else None
        by_id = {s.id: s for s in scores.samples} if scores else {}
        for row in mine:
            s = by_id.get(row["id"])
            detailed.append({
                **row,
                "reference_norm": s.reference_norm if s else None,
                "hypothesis_norm": s.hypothesis_norm if s else None,
                "wer": s.wer if s else None, "cer": s.cer if s else None})
        timed = [r for r in ok if not r.get("cached") and r.get("duration")]
        spent = sum(r["time"] for r in timed)
        status = statuses.get(model, {})
        total = expected_samples if expected_samples is not None else len(mine)
        summaries[model] = ModelSummary(
            model=model, batch=status.get("batch") or (mine[0]["batch"] if mine else ""),
            status=status.get("status", "pending" if not mine else "ok"),
            samples=len(mine), succeeded=len(ok), failures=len(mine) - len(ok),
            success_rate=len(ok) / total if total else 0.0,
            wer=scores.wer if scores else None, cer=scores.cer if scores else None,
            bleu=scores.bleu if scores else None, chrf=scores.chrf if scores else None,
            rtfx=sum(r["duration"] for r in timed) / spent if spent > 0 else None,
            mean_latency_s=statistics.fmean(r["time"] for r in timed) if timed else None,
            band=quality_band(scores.wer).value if scores else None,
            batch_size=status.get("batch_size"), batch_curve=status.get("batch_curve", []),
            peak_rss_gb=status.get("peak_rss_gb"), peak_gpu_gb=status.get("peak_gpu_gb"),
            load_seconds=status.get("load_seconds"), error=status.get("error"))
    return summaries, detailed


def _dump(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    return path


def write_results(run_dir: Path, plan: dict[str, Any], manifest: dict[str, Any],
                  expected_samples: int) -> dict[str, Path]:
    """Write every output file of the run; returns them by kind."""
    from core.evaluation.charts import write_charts

    from dataclasses import asdict

    run_dir = Path(run_dir)
    stamp = time.strftime("%Y%m%d_%H%M%S")
    records = RunRecords(run_dir)
    models = [m for b in plan["batches"] for m in b["models"]]
    summaries, detailed = summarize(records, models, expected_samples)
    for refusal in plan.get("refused", []):
        summaries.setdefault(refusal["model"], ModelSummary(
            refusal["model"], "", "refused", 0, 0, 0, 0.0, None, None, None, None, None, None,
            None, None, [], None, None, None, refusal["reason"]))
    out: dict[str, Path] = {}
    for batch in plan["batches"]:
        out[f"batch_{batch['name']}"] = _dump(
            run_dir / f"batch_{batch['name']}_results_{stamp}.json",
            {"batch": batch, "models": {m: asdict(summaries[m]) for m in batch["models"]}})
    out["consolidated"] = _dump(run_dir / f"consolidated_results_{stamp}.json", {
        "run_id": manifest.get("run_id"), "dataset": manifest.get("dataset"),
        "samples": expected_samples, "created": stamp,
        "models": {m: asdict(s) for m, s in summaries.items()}})
    out["detailed"] = _dump(run_dir / f"consolidated_detailed_{stamp}.json", detailed)
    memory = {p.stem.removeprefix("memory_stats_"): json.loads(p.read_text())
              for p in sorted(run_dir.glob("memory_stats_*.json"))
              if not p.stem.removeprefix("memory_stats_")[:1].isdigit()}
    out["memory"] = _dump(run_dir / f"memory_stats_{stamp}.json", {"batches": memory})
    out["manifest"] = _dump(run_dir / MANIFEST_FILE, manifest)
    out.update(write_charts(run_dir, summaries, stamp))
    return out


def latest(run_dir: Path, prefix: str) -> Path | None:
    """The newest ``<prefix>_<ts>.json`` of a run (results are rewritten on resume)."""
    found = sorted(Path(run_dir).glob(f"{prefix}_*.json"))
    return found[-1] if found else None
