"""The table ``ert evaluate`` prints once a run ends (or a resumed one does).

Kept apart from :mod:`core.evaluation.commands`, which parses the flags and starts the
run: this only reads what the run wrote (its consolidated results and per-model
summaries) and prints it, so its imports wait until a run has ended.
"""

from __future__ import annotations

import sys
from typing import Any


def print_report(outcome: Any) -> int:
    """Print the run's dataset line, one row per model (with its languages, figures,
    conditions and baseline verdict beneath), then the worker failures; the exit code of
    ``ert evaluate``: 1 when a worker failed, else 0."""
    from core.datasets import dataset_label
    from core.evaluation.run_dir import RunDir
    from core.evaluation.summary import (
        invariance_label,
        plan_against_run,
        speed_label,
        status_label,
    )
    from core.figures import FIGURES
    from core.phrasing import percent, percent_span, plural

    run = RunDir(outcome.run_dir)
    consolidated = run.read_consolidated() or {}
    print(f"\nrun {run.name} → {run.path}\ndataset {dataset_label(consolidated.get('dataset'))}"
          f" · {plural(int(consolidated.get('samples') or 0), 'sample')} · decoding "
          f"{consolidated.get('decoding')} · normalizer "
          f"{(consolidated.get('normalizer') or {}).get('version')}")
    print(f"{'model':28} {'status':15} {'WER %':>6} {'WER 95 %':>12} {'CER %':>6} "
          f"{'BLEU':>5} {'success %':>9} {'timed':>5} {'cached':>6} {'failed':>6} "
          f"{'skipped':>7} {'batch':>5}  RTFx")

    def pct(v: float | None, width: int = 6) -> str:
        return f"{percent(v):>{width}}"

    conditions = (consolidated.get("analysis") or {}).get("conditions") or {}
    condition_lines: dict[str, list[str]] = {}
    for r in conditions.get("rows", []):
        delta = ("" if r["delta_wer"] is None else f" · vs clean {100 * r['delta_wer']:+.1f} "
                 f"[{100 * r['delta_wer_ci'][0]:+.1f}, {100 * r['delta_wer_ci'][1]:+.1f}]")
        versus = (r.get("baseline") or {}).get("verdict")
        condition_lines.setdefault(r["model"], []).append(
            f"{r['condition']:26} {plural(r['samples'], 'sample'):>12} {pct(r['wer'])} "
            f"{percent_span(r['wer_ci']):>12} {pct(r['cer'])}{delta}"
            + (f" · vs {conditions.get('baseline')}: {versus}" if versus else ""))
    for name, m in run.read_summaries().items():
        bleu = f"{m.bleu:5.1f}" if m.bleu is not None else f"{'—':>5}"
        success = pct(m.success_rate, 9) if m.samples else f"{'—':>9}"
        print(f"{name:28} {m.status:15} {pct(m.wer)} {percent_span(m.wer_ci):>12} {pct(m.cer)} "
              f"{bleu} {success} {m.timed:5d} {m.cached:6d} {m.failures:6d} {m.skipped:7d} "
              f"{m.batch_size or '—':>5}  {speed_label(m)}")
        for lang, figures in m.languages.items() if len(m.languages) > 1 else ():
            print(f"  {lang:26} {plural(figures['samples'], 'sample'):>12} "
                  f"{pct(figures['wer'])} {percent_span(figures['wer_ci']):>12} "
                  f"{pct(figures.get('cer'))}")
        if m.figures:
            print("  " + " · ".join(f"{FIGURES[n].label} {FIGURES[n].show(v)}"
                                    for n, v in m.figures.items()
                                    if n in FIGURES and n not in ("wer", "cer")))
        if m.resumed:
            print(f"  {status_label(m)}: load time, compute and peaks over every part")
        if m.predicted_gb is not None or m.measured_gb is not None:
            print(f"  {plan_against_run(m)}")
        if invariance_label(m):
            print(f"  batch invariance: {invariance_label(m)}")
        for line in condition_lines.get(name, []):
            print(f"  {line}")
        if m.baseline:
            versus = m.baseline
            print(f"  vs {versus['model']}: {versus['verdict']} (ΔWER "
                  f"{100 * versus['delta_wer']:+.1f} points, 95 % interval "
                  f"[{100 * versus['delta_wer_ci'][0]:+.1f}, "
                  f"{100 * versus['delta_wer_ci'][1]:+.1f}], "
                  f"{plural(versus['pairs'], 'paired sample')})")
    for summary in conditions.get("models", {}).values():
        print(f"robustness: {summary['line']}")
    for failure in outcome.worker_failures:
        print(f"worker failure: {failure}", file=sys.stderr)
    if outcome.cancelled:
        print(f"cancelled: continue with `ert evaluate --resume {run.name}`")
    return 1 if outcome.worker_failures else 0
