"""A GPU evaluation worker's start and end, phase by phase (issue 15).

``python3 -m bench.worker_start [--pairs 3] [--out DIR]`` on a GPU machine, after
``python -m bench.asr_gpu prepare`` and ``ert demo-data --out .bench-gpu/demo-fr --lang fr``
here (see BENCHMARKS.md for the wheels the GPU machine needs). What a data-parallel run pays
once per worker whatever the number of GPUs, so what bounds its speed-up: each child process
goes the way a worker does through ERT's own code (registry, ``create_backend(spec, "cuda",
"bfloat16")``, ``load()``, then three ``transcribe`` calls of 64 French clips, 48 tokens,
Whisper large-v3 shapes with random weights, ``bench.asr_gpu.build_large_v3``) and marks the
time of each phase. The children alternate with and without the CUDA warm-up thread
(:mod:`core.asr.cuda_warmup`, switched off in the child by replacing its ``start``), and
end with a normal exit or ``os._exit`` (what :mod:`core.evaluation.worker` does), so each
pair is measured side by side; the parent times the whole process.
"""

from __future__ import annotations

from core import threads  # noqa: F401  (caps the CPU pools before torch loads)
from core.bytecode import child_environment

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.asr_gpu import ASSETS
from bench.asr_multigpu import BATCH as CLIPS
from bench.asr_multigpu import MAX_NEW_TOKENS as NEW_TOKENS
from bench.asr_multigpu import MODEL_KEY as KEY
from bench.asr_multigpu import large_v3, write_registry


def _off(*_: Any) -> threading.Thread:
    """In place of :func:`core.asr.cuda_warmup.start`: no warm-up."""
    thread = threading.Thread(target=lambda: None)
    thread.start()
    return thread


def child(warm: bool, fast_exit: bool, registry: Path) -> None:
    """One worker-like process; prints its marks (seconds since it began) as JSON."""
    began = time.perf_counter()
    marks: dict[str, float] = {}

    def mark(name: str) -> None:
        marks[name] = round(time.perf_counter() - began, 3)

    from core.asr import cuda_warmup
    from core.asr.base import DecodeOptions
    from core.asr.factory import create_backend
    from core.asr.registry import load_asr_registry
    from core.datasets import load_dataset_spec

    mark("ert imports")
    import torch

    mark("import torch")
    if not warm:
        cuda_warmup.start = _off  # type: ignore[assignment]
    samples = load_dataset_spec(str(ASSETS / "demo-fr" / "manifest.jsonl"))
    clips = [s.load_audio() for s in (samples * (CLIPS // len(samples) + 1))[:CLIPS]]
    mark("audio read")
    backend = create_backend(load_asr_registry(registry).get(KEY), "cuda", "bfloat16")
    backend.load()
    torch.cuda.synchronize()
    mark("loaded")
    options = DecodeOptions(language="fr", max_new_tokens=NEW_TOKENS, batch_size=CLIPS)
    for k in range(3):
        backend.transcribe(clips, options, languages=["fr"] * CLIPS)
        torch.cuda.synchronize()
        mark(f"batch {k}")
    print("MARKS " + json.dumps(marks), flush=True)
    if fast_exit:
        os._exit(0)


def run(pairs: int, out: Path) -> dict[str, Any]:
    registry = write_registry(out, large_v3())
    rows = []
    # Each pair: (no warm-up, normal exit), (warm-up, os._exit), then the other two.
    order = [(False, False), (True, True), (True, False), (False, True)] * pairs
    for warm, fast in order:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "bench.worker_start", "--child",
                               str(int(warm)), str(int(fast)), str(registry)],
                              capture_output=True, text=True, env=child_environment())
        wall = time.perf_counter() - started
        line = next((x for x in done.stdout.splitlines() if x.startswith("MARKS ")), None)
        if line is None:
            print(f"child failed (warm={warm}, os._exit={fast}):\n{done.stderr[-3000:]}")
            continue
        marks = json.loads(line[6:])
        row = {"warm": warm, "os_exit": fast, "marks": marks, "wall_s": round(wall, 3),
               "first_batch_s": round(marks["batch 0"] - marks["loaded"], 3),
               "later_batch_s": round(marks["batch 2"] - marks["batch 1"], 3),
               "end_s": round(wall - marks["batch 2"], 3)}  # includes the interpreter's start
        rows.append(row)
        print(json.dumps(row), flush=True)

    def mean(key: str, **where: bool) -> float | None:
        values = [r[key] if key in r else r["marks"][key] for r in rows
                  if all(r[k] == v for k, v in where.items())]
        return round(statistics.mean(values), 3) if values else None

    summary = {"gpu": _gpu_name(), "runs": rows, "mean": {
        "to first batch done, warm-up": mean("batch 0", warm=True),
        "to first batch done, none": mean("batch 0", warm=False),
        "first batch, warm-up": mean("first_batch_s", warm=True),
        "first batch, none": mean("first_batch_s", warm=False),
        "a later batch": mean("later_batch_s"),
        "end, os._exit": mean("end_s", os_exit=True),
        "end, normal exit": mean("end_s", os_exit=False)}}
    (out / "worker_start.json").write_text(json.dumps(summary, indent=2))
    for name, value in summary["mean"].items():
        print(f"{name}: {value} s")
    return summary


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        child(args[1] == "1", args[2] == "1", Path(args[3]))
        return None
    parser = argparse.ArgumentParser(prog="python3 -m bench.worker_start")
    parser.add_argument("--pairs", type=int, default=2, help="rounds of the four combinations")
    parser.add_argument("--out", default="runs/bench/worker_start")
    parsed = parser.parse_args(args)
    out = Path(parsed.out)
    out.mkdir(parents=True, exist_ok=True)
    return run(parsed.pairs, out)


if __name__ == "__main__":
    main()
