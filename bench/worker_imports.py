"""What a worker's imports cost with and without compiled bytecode (issue 15).

``python -m bench worker_imports [-- --repeat 2]`` (figures saved under ``runs/bench/``).
A worker process imports ERT's worker, torch and transformers' Whisper and reads a Whisper
processor before its model loads; ERT starts one per batch and per GPU. Each variant runs
those imports in fresh processes:

- ``as is``: this environment (a pip install keeps bytecode in ``__pycache__``);
- ``no bytecode``: every module compiled from source in every process, as on an image
  that sets ``PYTHONDONTWRITEBYTECODE=1`` and ships its packages without ``__pycache__``
  (simulated here with an empty ``PYTHONPYCACHEPREFIX``, which hides ``__pycache__``; on
  such an image it is the environment as is);
- ``ERT's cache``: the same, through :func:`core.bytecode.child_environment`, as the runner
  starts its workers: the first process fills ERT's bytecode cache (a fresh one here), the
  next ones read it.

Ratios are against ``no bytecode``, measured in the same run.
"""

from __future__ import annotations

from core.bytecode import child_environment
from core.paths import REPO_ROOT

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench.asr_gpu import ASSETS
from bench.common import save

IMPORTS = ("import core.evaluation.worker, torch\n"
           "from transformers import AutoProcessor, WhisperForConditionalGeneration\n"
           f"AutoProcessor.from_pretrained({str(ASSETS / 'whisper-large-v3-processor')!r})\n")


def _time(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS], env=env, cwd=REPO_ROOT, check=True,
                   capture_output=True)
    return round(time.perf_counter() - started, 2)


def run(repeat: int) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as cache:
        image = {**base, "PYTHONDONTWRITEBYTECODE": "1"}
        hidden = {**image, "PYTHONPYCACHEPREFIX": empty}  # nothing there, nothing written
        os.environ["ERT_CACHE_DIR"] = cache  # a fresh cache for ERT's variant
        ert = child_environment(image)
        times = {"as is": [_time(dict(os.environ)) for _ in range(repeat)],
                 "no bytecode": [_time(hidden) for _ in range(repeat)],
                 "ERT's cache, first": [_time(ert)],
                 "ERT's cache, next": [_time(ert) for _ in range(repeat)]}
    baseline = statistics.mean(times["no bytecode"])
    rows = [{"variant": name, "seconds": values, "mean_s": round(statistics.mean(values), 2),
             "vs_no_bytecode": round(statistics.mean(values) / baseline, 2)}
            for name, values in times.items()]
    result = {"python": sys.version.split()[0], "rows": rows}
    save("worker_imports", result)
    print("| variant | seconds | mean s | × no bytecode |\n| --- | --- | ---: | ---: |")
    for row in rows:
        print(f"| {row['variant']} | {', '.join(map(str, row['seconds']))} | {row['mean_s']} "
              f"| {row['vs_no_bytecode']} |")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench worker_imports --")
    parser.add_argument("--repeat", type=int, default=2, help="processes per variant")
    return run(parser.parse_args(argv).repeat)


if __name__ == "__main__":
    main(sys.argv[1:])
