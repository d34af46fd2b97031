"""Consolidating a run's logs into the seed's result files.

Scores come from :func:`core.scoring.score_predictions` (itself over
:func:`core.metrics.score`, the one scoring function) over the samples a
model transcribed; failed samples count against the success rate only,
skipped ones (a language the model does not transcribe) against nothing.
Cached transcripts are scored but left out of speed figures. Every file
names the text normalizer that made its scores.
"""

from __future__ import annotations

from core.asr.base import DecodeOptions
from core.evaluation.config import MANIFEST_FILE
from core.evaluation.records import RunRecords
from core.metrics import quality_band, rtfx
from core.normalize import normalizer_info
from core.scoring import Comparison, Prediction, score_predictions

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ModelSummary:
    model: str
    batch: str
    status: str
    samples: int  # recorded for this model: transcribed, failed or skipped
    succeeded: int
    failures: int
    success_rate: float  # succeeded over the samples in its languages
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
    skipped: int = 0  # samples in languages the model does not transcribe
    wer_ci: list[float] | None = None  # 95 % paired-bootstrap interval (fractions)
    languages: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-language figures
    decoding: str = "independent"  # or "packed" (the opt-in speed mode)
    packing_retries: int = 0
    baseline: dict[str, Any] | None = None  # paired change against the run's baseline


def decoding_mode(options: DecodeOptions) -> str:
    """What the model saw: each clip alone (the default), or short clips packed together."""
    return "packed" if options.pack_short else "independent"


def summarize(records: RunRecords, models: list[str] | None = None,
              expected_samples: int | None = None, baseline: str | None = None,
              decoding: str = "independent", strip_accents: bool = False
              ) -> tuple[dict[str, ModelSummary], list[dict[str, Any]]]:
    """Per-model summaries and per-sample rows (with normalized texts and scores).

    Scores, intervals, per-language figures and the baseline comparison all
    come from :func:`core.scoring.score_predictions`; skipped samples (wrong
    language) and failures are left out of them.
    """
    rows = records.sample_rows()
    statuses = records.last_model_status()
    order = models or list(dict.fromkeys([r["model"] for r in rows] + list(statuses)))
    ok_rows = [r for r in rows if r.get("error") is None and not r.get("skipped")]
    scored_models = {r["model"] for r in ok_rows}
    scores = score_predictions(
        [Prediction(r["model"], r["id"], r["reference"], r["hypothesis"], r.get("language"))
         for r in ok_rows if r["model"] in order],
        baseline if baseline in scored_models else None, strip_accents)
    summaries: dict[str, ModelSummary] = {}
    detailed: list[dict[str, Any]] = []
    for model in order:
        mine = [r for r in rows if r["model"] == model]
        skipped = [r for r in mine if r.get("skipped")]
        ok = [r for r in mine if r.get("error") is None and not r.get("skipped")]
        result = scores.get(model)
        by_id = {s.id: s for s in result.corpus.samples} if result and result.corpus else {}
        for row in mine:
            s = by_id.get(row["id"]) if not row.get("skipped") and row.get("error") is None \
                else None
            detailed.append({
                **row,
                "reference_norm": s.reference_norm if s else None,
                "hypothesis_norm": s.hypothesis_norm if s else None,
                "wer": s.wer if s else None, "cer": s.cer if s else None})
        timed = [r for r in ok if not r.get("cached") and r.get("duration")]
        spent = sum(r["time"] for r in timed)
        status = statuses.get(model, {})
        total = (expected_samples if expected_samples is not None else len(mine)) - len(skipped)
        summaries[model] = ModelSummary(
            model=model, batch=status.get("batch") or (mine[0]["batch"] if mine else ""),
            status=status.get("status", "pending" if not mine else "ok"),
            samples=len(mine), succeeded=len(ok), failures=len(mine) - len(ok) - len(skipped),
            success_rate=len(ok) / total if total > 0 else 0.0,
            wer=result.wer if result else None, cer=result.cer if result else None,
            bleu=result.bleu if result else None, chrf=result.chrf if result else None,
            rtfx=rtfx(sum(r["duration"] for r in timed), spent) if timed else None,
            mean_latency_s=statistics.fmean(r["time"] for r in timed) if timed else None,
            band=quality_band(result.wer).value if result else None,
            batch_size=status.get("batch_size"), batch_curve=status.get("batch_curve", []),
            peak_rss_gb=status.get("peak_rss_gb"), peak_gpu_gb=status.get("peak_gpu_gb"),
            load_seconds=status.get("load_seconds"), error=status.get("error"),
            skipped=len(skipped), wer_ci=result.wer_ci if result else None,
            languages={k: asdict(v) for k, v in result.languages.items()} if result else {},
            decoding=decoding, packing_retries=int(status.get("packing_retries") or 0),
            baseline=_comparison(result.comparison) if result else None)
    return summaries, detailed


def _comparison(c: Comparison | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"model": c.baseline, "pairs": c.pairs, "delta_wer": c.delta_wer,
            "delta_wer_ci": c.delta_wer_ci, "significant": c.significant, "verdict": c.verdict}


def _dump(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    return path


def write_results(run_dir: Path, plan: dict[str, Any], manifest: dict[str, Any],
                  expected_samples: int, strip_accents: bool = False) -> dict[str, Path]:
    """Write every output file of the run (scored with today's normalizer); returns them
    by kind."""
    from core.evaluation.charts import write_charts

    run_dir = Path(run_dir)
    stamp = time.strftime("%Y%m%d_%H%M%S")
    records = RunRecords(run_dir)
    models = [m for b in plan["batches"] for m in b["models"]]
    config = manifest.get("config") or {}
    decoding = decoding_mode(DecodeOptions(**config.get("decode", {})))
    summaries, detailed = summarize(records, models, expected_samples,
                                    baseline=config.get("baseline"), decoding=decoding,
                                    strip_accents=strip_accents)
    for refusal in plan.get("refused", []):
        summaries.setdefault(refusal["model"], ModelSummary(
            refusal["model"], "", "refused", 0, 0, 0, 0.0, None, None, None, None, None, None,
            None, None, [], None, None, None, refusal["reason"]))
    normalizer = normalizer_info(strip_accents)
    manifest = {**manifest, "normalizer": normalizer, "decoding": decoding}
    out: dict[str, Path] = {}
    for batch in plan["batches"]:
        out[f"batch_{batch['name']}"] = _dump(
            run_dir / f"batch_{batch['name']}_results_{stamp}.json",
            {"batch": batch, "normalizer": normalizer,
             "models": {m: asdict(summaries[m]) for m in batch["models"]}})
    out["consolidated"] = _dump(run_dir / f"consolidated_results_{stamp}.json", {
        "run_id": manifest.get("run_id"), "dataset": manifest.get("dataset"),
        "samples": expected_samples, "created": stamp, "normalizer": normalizer,
        "decoding": decoding, "baseline": config.get("baseline"),
        "models": {m: asdict(s) for m, s in summaries.items()}})
    out["detailed"] = _dump(run_dir / f"consolidated_detailed_{stamp}.json",
                            {"normalizer": normalizer, "samples": detailed})
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
