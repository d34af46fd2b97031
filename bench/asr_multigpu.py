"""Data-parallel evaluation on several GPUs of one host with the local executor (issue 15).

``python3 -m bench.asr_multigpu [--out DIR] [--gpus 1 2 4]`` on a GPU machine, after
``python -m bench.asr_gpu prepare`` and ``ert demo-data --out .bench-gpu/demo-fr --lang fr``
here (the GPU machine has no espeak-ng and downloads nothing; see BENCHMARKS.md for the wheels
it needs). Whisper large-v3 shapes with random weights (``bench.asr_gpu.build_large_v3``),
greedy, at most ``MAX_NEW_TOKENS`` tokens a clip (random weights rarely stop by themselves,
so every run decodes the same tokens), the French demo clips ``--copies`` times over (192:
7,680 clips, 7.8 h of audio, so that 1, 2 and 4 GPUs fit one 600 s device call; 384 is about
the size of Common Voice's French test set; distinct ids), batches of ``BATCH`` (fixed, so
the runs differ only in the number of workers), no transcript cache. The same ``RunConfig``
is run through ``core.evaluation.runner.start`` with ``devices`` = the first 1, 2 (, 4)
GPUs and ``--replicas`` workers on each (1 by default; ``--gpus 1 --replicas 1 2`` measures
what a second worker on one GPU gains, the figure :mod:`core.evaluation.replicas` decides
on): wall time of the whole run (workers' start, model loads, tuning, decoding, results),
speed-up against the first run, and whether every run produced the same transcripts.
A second call with the same ``--out`` on the same machine keeps the runs already
measured there and adds the others (``--gpus 4 2`` in one device call, a long 1-GPU
baseline in the next); speed-ups are against the run with the fewest GPUs and workers.
"""

from __future__ import annotations

from core import threads  # noqa: F401  (caps the CPU pools before torch loads)

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench.asr_gpu import ASSETS, LARGE_V3_DIR, build_large_v3

MAX_NEW_TOKENS = 48
BATCH = 64
MODEL_KEY = "whisper:large-v3-random"


def large_v3() -> Path:
    """Whisper large-v3 shapes with random weights (``bench.asr_gpu.build_large_v3``), built
    on the first call on a machine; the same seed, so an earlier call's is the same."""
    if not (LARGE_V3_DIR / "config.json").exists():
        build_large_v3(LARGE_V3_DIR)
    return LARGE_V3_DIR


def write_registry(folder: Path, model: Path) -> Path:
    path = folder / "asr_models.toml"
    path.write_text(f'default = "{MODEL_KEY}"\n[models."{MODEL_KEY}"]\nsource = "{model}"\n'
                    'languages = ["fr", "en"]\nmemory_gb_gpu = 8.0\n')
    return path


def _dataset(out: Path, copies: int) -> Path:
    rows = [json.loads(line) for line in
            (ASSETS / "demo-fr" / "manifest.jsonl").read_text().splitlines()]
    audio = (ASSETS / "demo-fr").resolve()
    path = out / f"manifest-x{copies}.jsonl"
    path.write_text("".join(json.dumps({**r, "id": f"{r['id']}-{k}", "audio_filepath": str(
        audio / r["audio_filepath"])}, ensure_ascii=False) + "\n"
        for k in range(copies) for r in rows))
    return path


def _busiest(rows: list[dict[str, Any]], field: str) -> float:
    """A per-sample time summed per device, the busiest device's: ``time`` is the decoding
    phase, ``decode_seconds`` the audio reading (overlapped with the model on a GPU by
    :mod:`core.evaluation.prefetch`)."""
    per_device: dict[str, float] = {}
    for row in rows:
        key = row.get("device") or "cuda:0"
        per_device[key] = per_device.get(key, 0.0) + float(row.get(field) or 0.0)
    return max(per_device.values(), default=0.0)


def _run_id(gpus: int, replicas: int) -> str:
    return f"gpus-{gpus}x{replicas}"


def _earlier_runs(path: Path, now: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs an earlier call wrote to the same ``--out`` on the same machine and set-up,
    so that a measurement too long for one device call is split over two (a baseline of
    15,360 clips in one, the other GPU counts in the next) and still compared in one table;
    anything else starts afresh."""
    if not path.exists():
        return []
    before = json.loads(path.read_text())
    same = all(before.get(k) == now[k] for k in ("gpu", "visible", "torch", "transformers",
                                                   "copies"))
    return list(before.get("runs", [])) if same else []


def run(gpus: list[int], out: Path, copies: int, replicas: list[int] | None = None
        ) -> dict[str, Any]:
    from core.asr.base import DecodeOptions
    from core.evaluation import runner
    from core.evaluation.config import RunConfig
    from core.evaluation.records import read_jsonl
    from core.evaluation.results import aggregate_parts
    from core.evaluation.run_dir import SAMPLES_FILE, RunDir

    import torch

    available = torch.cuda.device_count()
    registry = write_registry(out, large_v3())
    dataset = _dataset(out, copies)
    import transformers

    results: dict[str, Any] = {"gpu": torch.cuda.get_device_name(0), "visible": available,
                               "torch": torch.__version__,
                               "transformers": transformers.__version__, "copies": copies,
                               "runs": []}
    results["runs"] = _earlier_runs(out / "asr_multigpu.json", results)
    transcripts: dict[tuple[int, int], dict[tuple[str, str], str]] = {}
    for entry in results["runs"]:
        rows = read_jsonl(out / "runs" / _run_id(entry["gpus"], entry["replicas"]) / SAMPLES_FILE)
        transcripts[entry["gpus"], entry["replicas"]] = {
            (r["model"], r["id"]): r["hypothesis"] for r in rows}

    def configure(run_id: str, manifest: Path, devices: list[str], per_gpu: int = 1
                  ) -> RunConfig:
        shutil.rmtree(out / "runs" / run_id, ignore_errors=True)  # a fresh run, no resume
        return RunConfig(dataset=str(manifest), models=[MODEL_KEY], device="cuda",
                         devices=devices if len(devices) > 1 else [], out_dir=str(out / "runs"),
                         run_id=run_id, registry_path=str(registry), replicas=per_gpu,
                         decode=DecodeOptions(language="fr", max_new_tokens=MAX_NEW_TOKENS,
                                              batch_size=BATCH),
                         tune_batch_size=False, use_cache=False)

    todo = [(g, r) for g in gpus if g <= available for r in replicas or [1]
            if (g, r) not in transcripts]  # not measured by an earlier call on this machine
    if todo:
        # As on a machine where ERT has run before: the workers' bytecode cache filled
        # (core.bytecode; this image writes none of its own), the weights read once.
        runner.start(configure("warm-up", _dataset(out, 1), ["cuda:0"]))
    for count, per_gpu in todo:
        config = configure(_run_id(count, per_gpu), dataset,
                           [f"cuda:{i}" for i in range(count)], per_gpu)
        started = time.perf_counter()
        run_dir = runner.prepare(config)
        prepared = time.perf_counter()
        outcome = runner.resume(run_dir)
        wall = time.perf_counter() - started
        rows = read_jsonl(config.run_dir / SAMPLES_FILE)
        transcripts[count, per_gpu] = {(r["model"], r["id"]): r["hypothesis"] for r in rows}
        audio = sum(r["duration"] or 0.0 for r in rows)
        parts = RunDir(config.run_dir).records().turns(alive=False)  # a turn's last line
        model_s = aggregate_parts(parts)["wall_seconds"]  # workers' model turns, overlapped
        entry = {"gpus": count, "replicas": per_gpu, "wall_s": round(wall, 2), "model_s": model_s,
                 "decode_s": round(_busiest(rows, "time"), 2),
                 "read_s": round(_busiest(rows, "decode_seconds"), 2),
                 "load_s": max((p.get("load_seconds") or 0.0 for p in parts), default=None),
                 "prepare_s": round(prepared - started, 2),
                 "results_s": round(outcome.results_seconds, 2),
                 "end_spread_s": round(max(p["ended"] for p in parts)
                                       - min(p["ended"] for p in parts), 2),
                 "samples": len(rows), "unique": len(set(transcripts[count, per_gpu])),
                 "failures": outcome.worker_failures, "audio_s": round(audio, 1),
                 "rtfx_wall": round(audio / wall, 1),
                 "devices": sorted({p.get("device") or "cuda:0" for p in parts})}
        results["runs"].append(entry)
        print(json.dumps(entry), flush=True)
        (out / "asr_multigpu.json").write_text(json.dumps(results, indent=2))
    results["runs"].sort(key=lambda r: (r["gpus"], r["replicas"]))
    one = results["runs"][0] if results["runs"] else None  # the fewest GPUs and workers
    first = transcripts[one["gpus"], one["replicas"]] if one else {}
    for entry in results["runs"]:
        entry["speedup"] = round(one["wall_s"] / entry["wall_s"], 2) if one else None
        entry["model_speedup"] = round(one["model_s"] / entry["model_s"], 2) \
            if one and one["model_s"] and entry["model_s"] else None
        entry["decode_speedup"] = round(one["decode_s"] / entry["decode_s"], 2) \
            if one and entry["decode_s"] else None
        mine = transcripts[entry["gpus"], entry["replicas"]]
        entry["differing_transcripts"] = sum(mine.get(k) != v for k, v in first.items())
    results["same_transcripts"] = all(t == first for t in transcripts.values())
    (out / "asr_multigpu.json").write_text(json.dumps(results, indent=2))
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python3 -m bench.asr_multigpu")
    parser.add_argument("--out", default="runs/bench/multigpu")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1],
                        help="workers per GPU, each count run for each --gpus (the run "
                             "with the fewest GPUs and workers is the baseline)")
    parser.add_argument("--copies", type=int, default=192, help="times the 40 clips are used")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = run(args.gpus, out, args.copies, args.replicas)
    for entry in results["runs"]:
        print(f"{entry['gpus']} GPU(s) × {entry['replicas']} worker(s): {entry['wall_s']} s "
              f"wall ×{entry['speedup']}, "
              f"models {entry['model_s']} s ×{entry['model_speedup']}, decoding "
              f"{entry['decode_s']} s ×{entry['decode_speedup']}, {entry['samples']} "
              f"records ({entry['unique']} unique), {entry['differing_transcripts']} "
              f"transcripts differ from 1 GPU")
    print(f"same transcripts on every GPU count: {results['same_transcripts']}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
