"""Robustness conditions on the demo set: WER per condition, and what the perturbations cost.

``python -m bench conditions [-- --models faster-whisper:tiny.en faster-whisper:base
--samples 40]``. One real run, ``ert evaluate --conditions all --no-cache --no-cache-write``
(every model under every built-in condition, the same clips) on the English espeak-ng demo
set; then, from its records, per condition: each model's WER [95 %] and its paired change
against clean; the model's compute per clip (``time``); and what reading a clip took in the
worker (``decode_seconds``: decoding the file, plus the perturbation) less the same clip's
clean reading — the perturbation's cost inside the run (wall time). A second pass times each
perturbation alone in CPU time (``process_time``) on the same clips, since the run's wall
times move with the machine's load.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.conditions import CLEAN, clip_of, expand, load_conditions, parse_conditions
from core.datasets import load_dataset_spec
from core.demo_data import ensure_demo
from core.evaluation import runner
from core.evaluation.config import RunConfig
from core.evaluation.run_dir import RunDir

import argparse
import statistics
import sys
import time
from typing import Any

from bench.common import OUT, save, table


def _perturbation_cpu(config: RunConfig) -> dict[str, float]:
    """Median CPU ms each condition adds to reading a clip, measured alone."""
    clips = load_dataset_spec(config.dataset, config.samples, config.seed)
    items = expand(clips, parse_conditions(config.conditions, load_conditions()))
    for item in items:  # rooms' responses and the babble pool made once, as a run does
        item.load_audio()
    spent: dict[str, dict[str, float]] = {}
    for item in items:
        began = time.process_time()
        item.load_audio()
        spent.setdefault(item.condition, {})[item.clip_id] = time.process_time() - began
    clean = spent[CLEAN]
    return {label: 1000 * statistics.median(t - clean[c] for c, t in times.items())
            for label, times in spent.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench conditions")
    parser.add_argument("--models", nargs="+", default=["faster-whisper:tiny.en"])
    parser.add_argument("--samples", type=int, default=None, help="clips (default: all 40)")
    parser.add_argument("--run", default=None, help="report on this finished run instead")
    args = parser.parse_args(argv)
    if args.run:
        run = RunDir(args.run)
        config, wall = run.read_config(), 0.0
        args.models = config.models
    else:
        config = RunConfig(dataset=str(ensure_demo()), models=args.models,
                           samples=args.samples, conditions=["all"], use_cache=False,
                           write_cache=False, out_dir=str(OUT / "conditions"))
        began = time.perf_counter()
        run = RunDir(runner.start(config).run_dir)
        wall = time.perf_counter() - began
    report = (run.read_consolidated() or {})["analysis"]["conditions"]
    records = [r for r in run.records().sample_rows() if r.get("error") is None]
    reading: dict[str, dict[str, float]] = {}
    compute: dict[tuple[str, str], list[float]] = {}
    for r in records:
        reading.setdefault(r["condition"], {})[clip_of(r["id"], r["condition"])] = \
            r["decode_seconds"]
        if not r.get("cached"):
            compute.setdefault((r["model"], r["condition"]), []).append(r["time"])
    alone = _perturbation_cpu(config)
    by = {(r["model"], r["condition"]): r for r in report["rows"]}
    rows = []
    for label in report["conditions"]:
        in_run = 1000 * statistics.median(
            t - reading[CLEAN][c] for c, t in reading[label].items() if c in reading[CLEAN])
        row: dict[str, Any] = {"condition": label}
        for model in args.models:
            r = by.get((model, label))
            row[f"{model} WER %"] = 100 * r["wer"] if r else None
            row[f"{model} vs clean"] = (100 * r["delta_wer"] if r and r["delta_wer"] is not None
                                        else None)
        row.update({"added ms (run)": in_run, "added CPU ms (alone)": alone[label]})
        for model in args.models:
            model_ms = 1000 * statistics.median(compute[(model, label)])
            row[f"{model} ms/clip"] = model_ms
            row[f"added % of {model}"] = 100 * in_run / model_ms
        rows.append(row)
    print(table(rows, f"{', '.join(args.models)} on {len(reading[CLEAN])} demo clips, "
                      f"every built-in condition (run {run.name}, {wall:.0f} s)"))
    for summary in report["models"].values():
        print(summary["line"])
    # Over the whole run: every perturbation's added reading time against each model's
    # compute on the perturbed clips.
    added = sum(t - reading[CLEAN][c] for label, times in reading.items() if label != CLEAN
                for c, t in times.items())
    shares = {}
    for model in args.models:
        spent = sum(sum(compute[(model, label)]) for label in reading if label != CLEAN)
        shares[model] = added / spent
        print(f"perturbations: {added:.1f} s added over the run; {model}'s compute on the "
              f"perturbed clips {spent:.1f} s ({100 * shares[model]:.1f} %)", file=sys.stderr)
    result = {"run": str(run.path), "wall_seconds": wall, "rows": rows,
              "models": report["models"], "added_share": shares}
    print(f"saved {save('conditions', result)}")
    return result


if __name__ == "__main__":
    main()
