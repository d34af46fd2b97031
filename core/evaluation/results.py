"""Consolidating a run's logs into the seed's result files.

Scores come from :func:`core.scoring.score_predictions` (itself over
:func:`core.metrics.score`, the one scoring function) over the samples a
model transcribed; failed samples count against the success rate only,
skipped ones (a language the model does not transcribe) against nothing.
Cached transcripts are scored but left out of speed figures. Every file
names the text normalizer that made its scores.
"""

from __future__ import annotations

from core.analysis import analysis_of
from core.asr.base import DecodeOptions
from core.compare import to_csv
from core.evaluation import speed
from core.evaluation.charts import plotting, write_chart
from core.evaluation.planner import ModelNeed, Plan
from core.evaluation.records import RunRecords, read_jsonl_from
from core.evaluation.run_dir import (
    CHART,
    CONDITIONS_CHART,
    CONDITIONS_CSV,
    CONSOLIDATED,
    DETAILED,
    MEMORY,
    RESULTS_CSV,
    SAMPLES_CSV,
    RunDir,
    stamp,
)
from core.evaluation.summary import ModelSummary, csv_row
from core.figures import sample_figures
from core.files import write_atomic
from core.metrics import quality_band
from core.normalize import normalizer_info
from core.scoring import Comparison, Prediction, prime_predictions, score_predictions

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any


def decoding_mode(options: DecodeOptions) -> str:
    """What the model saw: each clip alone (the default), or short clips packed together."""
    mode = "packed" if options.pack_short else "independent"
    return mode + (" + no-speech filter" if options.no_speech_filter else "")


def _predictions(rows: list[dict[str, Any]]) -> list[Prediction]:
    """What is scored of a run's records: the samples transcribed (not failed, not skipped)."""
    return [Prediction(r["model"], r["id"], r["reference"], r["hypothesis"], r.get("language"),
                       fields=r)
            for r in rows if r.get("error") is None and not r.get("skipped")]


class ScoreAhead:
    """Scores a run's samples as they are recorded, while its workers decode on GPUs and
    leave the CPU idle, so that :func:`write_results` then only sums them (on a 4-GPU host,
    scoring 15,360 samples after the workers took 8.4 s of a run's end). Each step reads
    only the lines added since the last one; a later duplicate of a (model, sample), which
    the results drop, is scored for nothing. The first step also imports the chart's
    plotting library (0.6 s of the run's end otherwise)."""

    INTERVAL_S = 5.0

    def __init__(self, records: RunRecords, strip_accents: bool = False) -> None:
        self.records, self.strip_accents = records, strip_accents
        self._next = time.monotonic() + self.INTERVAL_S
        self._offset = 0
        self._plotting = False

    def step(self) -> None:
        """Score what was recorded since the last step, at most every ``INTERVAL_S``. Only a
        head start: if it fails, it stops, and the run's end scores (and reports) as ever."""
        if time.monotonic() < self._next:
            return
        if not self._plotting:
            self._plotting = True
            with contextlib.suppress(Exception):  # the chart reports its own failure later
                plotting()
        try:
            rows, self._offset = read_jsonl_from(self.records.samples.path, self._offset)
            prime_predictions(_predictions(rows), self.strip_accents)
        except Exception:  # never the reason a run stops
            self._next = math.inf
            return
        self._next = time.monotonic() + self.INTERVAL_S


def summarize(records: RunRecords, models: list[str] | None = None,
              expected_samples: int | None = None, baseline: str | None = None,
              decoding: str = "independent", strip_accents: bool = False,
              planned: dict[str, ModelNeed] | None = None, by: Sequence[str] = (),
              analysis: dict[str, Any] | None = None
              ) -> tuple[dict[str, ModelSummary], list[dict[str, Any]]]:
    """Per-model summaries and per-sample rows (with normalized texts and scores).

    Scores, intervals, per-language figures and the baseline comparison all
    come from :func:`core.scoring.score_predictions`; skipped samples (wrong
    language) and failures are left out of them. ``analysis``, when given, is filled with
    :func:`core.analysis.analysis_of`'s report over the same scores (slices by ``by``,
    error anatomy, hallucinations).
    """
    rows = records.sample_rows()
    part_rows = records.turns(alive=False)  # the workers have ended: a running turn was killed
    order = models or list(dict.fromkeys([r["model"] for r in rows] +
                                         [p["model"] for p in part_rows]))
    predictions = [p for p in _predictions(rows) if p.model in order]
    scored_models = {p.model for p in predictions}
    scores = score_predictions(predictions, baseline if baseline in scored_models else None,
                               strip_accents)
    if analysis is not None:
        analysis.update(analysis_of(predictions, scores, by,
                                    baseline if baseline in scored_models else None))
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
                "wer": s.wer if s else None, "cer": s.cer if s else None,
                **(sample_figures(s, row) if s else {})})
        parts = [p for p in part_rows if p["model"] == model]
        whole = aggregate_parts(parts)
        load = whole["load_seconds"]
        total = (expected_samples if expected_samples is not None else len(mine)) - len(skipped)
        status = whole["status"] or ("pending" if not mine else "ok")
        # A cancelled model's unreached samples did not fail: its rate covers those it reached
        # (its status says how many: core.evaluation.summary.status_label).
        reached = len(mine) - len(skipped) if status == "cancelled" else total
        summaries[model] = ModelSummary(
            model=model, batch=whole["batch"] or (mine[0]["batch"] if mine else ""),
            status=status, expected=max(total, 0),
            samples=len(mine), succeeded=len(ok), failures=len(mine) - len(ok) - len(skipped),
            success_rate=len(ok) / reached if reached > 0 else 0.0,
            wer=result.wer if result else None, cer=result.cer if result else None,
            bleu=result.bleu if result else None, chrf=result.chrf if result else None,
            rtfx=speed.model_rtfx(mine), mean_latency_s=speed.mean_latency(mine),
            band=quality_band(result.wer).value if result else None,
            batch_size=speed.final_batch_size(mine),
            batch_curve=whole["batch_curve"], peak_rss_gb=whole["peak_rss_gb"],
            peak_gpu_gb=whole["peak_gpu_gb"], load_seconds=load, error=whole["error"],
            skipped=len(skipped), wer_ci=result.wer_ci if result else None,
            languages={k: asdict(v) for k, v in result.languages.items()} if result else {},
            decoding=decoding, packing_retries=whole["packing_retries"],
            baseline=_comparison(result.comparison) if result else None,
            figures=result.figures if result else {},
            timed=len(speed.timed(mine)), cached=len(speed.cached(mine)),
            rtfx_end_to_end=speed.end_to_end_rtfx(mine, load or 0.0),
            mean_compute_s=speed.mean_compute(mine),
            rtfx_when_cached=speed.rtfx_when_cached(mine), parts=len(parts),
            resumed=whole["resumed"], compute_seconds=speed.compute_seconds(mine),
            batch_sizes=_batch_sizes(mine), batch_sizes_from=whole["batch_sizes_from"],
            batch_invariance=_invariance(mine, parts, strip_accents),
            loaded=whole["loaded"],
            dtype=whole["dtype"], measured_gb=whole["peak_growth_gb"],
            retained_gb=whole["retained_gb"], actual_seconds=whole["wall_seconds"],
            **_predicted((planned or {}).get(model)))
    return summaries, detailed


def _segments(spans: list[tuple[float, float]]) -> int:
    """How many stretches of time the (start, end) spans make: overlapping ones
    (data-parallel workers) are one, successive ones (a resumed run) several."""
    count, reach = 0, float("-inf")
    for start, end in sorted(spans):
        count += start > reach
        reach = max(reach, end)
    return count


def _busy_seconds(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the (start, end) spans: overlapping ones (data-parallel workers)
    count once, successive ones (a resumed run) add up."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def aggregate_parts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One model's worker turns (a run resumed twice has three; data-parallel workers one
    each) as one: load time summed, peaks maxed, wall time covered, tuning curves joined in
    order; status and error are the last turn's; devices and nodes listed."""
    last = parts[-1] if parts else {}

    def peak(name: str) -> float | None:
        known = [p[name] for p in parts if p.get(name) is not None]
        return max(known) if known else None

    loads = [p["load_seconds"] for p in parts if p.get("load_seconds") is not None]
    # A killed turn ends at its last checkpoint.
    spans = [(p["started"], p.get("ended") or p["updated"]) for p in parts
             if p.get("started") and (p.get("ended") or p.get("updated"))]
    replayed = [p.get("batch_replayed") for p in parts if p.get("batch_steps")]
    return {"status": last.get("status"), "error": last.get("error"), "batch": last.get("batch"),
            "load_seconds": sum(loads) if loads else None,
            "peak_rss_gb": peak("peak_rss_gb"), "peak_gpu_gb": peak("peak_gpu_gb"),
            "peak_growth_gb": peak("peak_growth_gb"), "retained_gb": peak("retained_gb"),
            "dtype": last.get("dtype"),
            "wall_seconds": round(_busy_seconds(spans), 3) if spans else None,
            "devices": sorted({p["device"] for p in parts if p.get("device")}),
            "nodes": sorted({p["node"] for p in parts if p.get("node")}),
            "batch_curve": [{**point, "part": i} for i, p in enumerate(parts, start=1)
                            for point in p.get("batch_curve") or []],
            "packing_retries": sum(int(p.get("packing_retries") or 0) for p in parts),
            "resumed": _segments(spans) > 1,
            "compute_seconds": round(sum(p.get("compute_seconds") or 0.0 for p in parts), 4),
            "batch_sizes_from": (None if not replayed else "replayed" if all(replayed)
                                 else "tuned" if not any(replayed) else "tuned, then replayed"),
            "loaded": any(p.get("loaded", True) for p in parts) if parts else True}


def _batch_sizes(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many of the model's timed clips were decoded at each batch size."""
    sizes: dict[str, int] = {}
    for row in speed.timed(rows):
        if row.get("batch_size"):
            sizes[str(row["batch_size"])] = sizes.get(str(row["batch_size"]), 0) + 1
    return dict(sorted(sizes.items(), key=lambda kv: int(kv[0])))


def _invariance(rows: list[dict[str, Any]], parts: list[dict[str, Any]],
                strip_accents: bool) -> dict[str, Any] | None:
    """The batch-invariance check of a model's turns, scored: how many of the clips
    re-decoded alone differ from their batched transcript, and the WER of both on those
    clips (:func:`core.scoring.score_predictions`, as every other figure). None when the run
    did not check."""
    checks = [p["invariance"] for p in parts if p.get("invariance") is not None]
    if not checks:
        return None
    sizes = {i: int(b) for c in checks for i, b in (c.get("batch_sizes") or {}).items()}
    single = {i: t for c in checks for i, t in (c.get("single") or {}).items() if i in sizes}
    by_id = {r["id"]: r for r in rows if r["id"] in single and r.get("error") is None}
    ids = sorted(by_id)
    differ = sorted(i for i in ids if by_id[i]["hypothesis"] != single[i])
    out: dict[str, Any] = {"clips": len(ids), "differ": len(differ), "differing": differ,
                           "at_batch": sorted({sizes[i] for i in ids}),
                           "wer_batched": None, "wer_single": None, "delta_wer": None}
    if ids:
        scores = score_predictions(
            [Prediction(which, i, by_id[i]["reference"], text, by_id[i].get("language"))
             for i in ids for which, text in (("batched", by_id[i]["hypothesis"]),
                                               ("single", single[i]))],
            strip_accents=strip_accents)
        out["wer_batched"], out["wer_single"] = scores["batched"].wer, scores["single"].wer
        out["delta_wer"] = round(out["wer_batched"] - out["wer_single"], 6)
    return out


def _predicted(need: ModelNeed | None) -> dict[str, Any]:
    if need is None:
        return {}
    return {"predicted_gb": round(need.need_gb, 3), "predicted_from": need.source,
            "predicted_seconds": round(need.seconds, 1)}


def _comparison(c: Comparison | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"model": c.baseline, "pairs": c.pairs, "delta_wer": c.delta_wer,
            "delta_wer_ci": c.delta_wer_ci, "significant": c.significant, "verdict": c.verdict}


PART_FIELDS = ("model", "batch", "status", "started", "ended", "samples_done", "load_seconds",
               "compute_seconds", "peak_rss_gb", "peak_growth_gb", "peak_gpu_gb", "batch_size",
               "batch_curve", "batch_steps", "batch_replayed", "loaded", "shard", "device",
               "node")


def run_parts(records: RunRecords) -> list[dict[str, Any]]:
    """Every worker turn of the run for its manifest, a killed one included (it ends at its
    last checkpoint): when, how many samples, load time, compute, peaks, tuning curve."""
    return [{**{k: p.get(k) for k in PART_FIELDS},
             "ended": p.get("ended") or p.get("updated")}
            for p in records.turns(alive=False)]


def write_results(run: RunDir, plan: Plan, manifest: dict[str, Any],
                  expected_samples: int, strip_accents: bool = False) -> dict[str, Path]:
    """Write every output file of the run (scored with today's normalizer); returns them
    by kind."""
    when = stamp()
    records = run.records()
    config = manifest.get("config") or {}
    decoding = decoding_mode(DecodeOptions(**config.get("decode", {})))
    report: dict[str, Any] = {}
    summaries, detailed = summarize(records, plan.models, expected_samples,
                                    baseline=config.get("baseline"), decoding=decoding,
                                    strip_accents=strip_accents,
                                    planned={n.model: n for b in plan.batches for n in b.needs},
                                    by=config.get("slice_by") or (), analysis=report)
    for model, found in report.get("hallucinations", {}).items():
        if model in summaries:
            summaries[model].hallucinations = found
    for refusal in plan.refused:
        summaries.setdefault(refusal.model, ModelSummary.refused(refusal.model, refusal.reason))
    normalizer = normalizer_info(strip_accents)
    manifest = {**manifest, "normalizer": normalizer, "decoding": decoding,
                "speed_definitions": speed.DEFINITIONS,
                "parts": run_parts(records)}
    out: dict[str, Path] = {}
    for batch in plan.batches:
        out[f"batch_{batch.name}"] = run.write_json(
            run.batch_result_file(batch.name, when),
            {"batch": asdict(batch), "normalizer": normalizer,
             "models": {m: asdict(summaries[m]) for m in batch.models}})
    out["consolidated"] = run.write_json(run.result_file(CONSOLIDATED, when), {
        "run_id": manifest.get("run_id"), "dataset": manifest.get("dataset"),
        "samples": expected_samples, "created": when, "normalizer": normalizer,
        "decoding": decoding, "baseline": config.get("baseline"),
        "models": {m: asdict(s) for m, s in summaries.items()}, "analysis": report})
    out["detailed"] = run.write_json(run.result_file(DETAILED, when),
                                     {"normalizer": normalizer, "samples": detailed})
    # The same figures for a spreadsheet: one row per model, one per sample.
    tables = {RESULTS_CSV: [csv_row(s) for s in summaries.values()], SAMPLES_CSV: detailed}
    for name, rows in tables.items():
        write_atomic(run.path / name, to_csv(rows))
    out["results_csv"], out["samples_csv"] = run.path / RESULTS_CSV, run.path / SAMPLES_CSV
    out["memory"] = run.write_json(run.result_file(MEMORY, when),
                                   {"batches": run.batch_memory_stats()})
    out["manifest"] = run.write_manifest(manifest)
    chart = write_chart(run.result_file(CHART, when, ".png"), run.name, summaries)
    if chart is not None:
        out["chart"] = chart
    out.update(write_condition_files(run, when, report.get("conditions")))
    return out


def write_condition_files(run: RunDir, when: str, conditions: dict[str, Any] | None
                          ) -> dict[str, Path]:
    """A run with robustness conditions: ``conditions.csv`` (a row per model and condition)
    and the WER-against-severity chart; nothing for a run without."""
    if not conditions:
        return {}
    from core.evaluation.condition_chart import write_condition_chart
    from core.robustness import csv_rows

    out = {"conditions_csv": run.path / CONDITIONS_CSV}
    write_atomic(out["conditions_csv"], to_csv(csv_rows(conditions)))
    chart = write_condition_chart(run.result_file(CONDITIONS_CHART, when, ".png"), run.name,
                                  conditions)
    if chart is not None:
        out["conditions_chart"] = chart
    return out
