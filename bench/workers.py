"""Two data-parallel CPU workers against one, on this machine (issue 15).

``python -m bench workers`` — the bundled faster-whisper tiny.en on the 40 English demo
clips, greedy, batch 8, no transcript cache; the same run with ``devices=[]`` (one worker,
all ERT_THREADS) and ``devices=["cpu", "cpu"]`` (two workers sharing the thread cap),
interleaved, ``REPEATS`` times each: wall time of ``runner.start`` and the ratio.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.asr.base import DecodeOptions
from core.demo_data import default_manifest, make_demo_dataset
from core.evaluation import runner
from core.evaluation.config import RunConfig

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median, save, table

REPEATS = 2
MODEL = "faster-whisper:tiny.en"


def _run(out: Path, run_id: str, devices: list[str], dataset: str) -> float:
    config = RunConfig(dataset=dataset, models=[MODEL], out_dir=str(out), run_id=run_id,
                       devices=devices, decode=DecodeOptions(batch_size=8, language="en"),
                       tune_batch_size=False, use_cache=False)
    started = time.perf_counter()
    outcome = runner.start(config)
    if outcome.worker_failures:
        raise SystemExit(f"run failed: {outcome.worker_failures}")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict[str, Any]:
    manifest = default_manifest()
    if not manifest.exists():
        make_demo_dataset(manifest.parent)
    walls: dict[str, list[float]] = {"1 worker": [], "2 workers": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(REPEATS):
            for name, devices in (("1 worker", []), ("2 workers", ["cpu", "cpu"])):
                walls[name].append(_run(Path(tmp), f"{name[0]}-{i}", devices, str(manifest)))
                print(f"  {name}: {walls[name][-1]:.1f} s", file=sys.stderr, flush=True)
    one = median(walls["1 worker"])
    rows = [{"executor": name, "wall s (median)": median(v), "runs": len(v),
             "× 1 worker": one / median(v)} for name, v in walls.items()]
    print(table(rows, f"{MODEL}, demo set (en+fr, French skipped), 2 cores"))
    print(f"saved {save('workers', {'rows': rows, 'walls': walls})}")
    return {"rows": rows}


if __name__ == "__main__":
    main(sys.argv[1:])
