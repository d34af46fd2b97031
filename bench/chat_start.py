"""``ert chat`` from process start to its first answer token and to its end (issue 27).

``python -m bench chat_start [-- --repeats 5 --baseline-commit 713d573]``: runs
``python -m core chat "What is the capital of France?"`` on a warm cache (converted and
packed weights already written; one discarded run of each side first), alternating with
the same command from ``--baseline-commit``'s ``core/`` and ``configs/`` (extracted with
``git archive``, run with the same interpreter, packages and cache): the path before
issue 27 (full transformers load, evaluation parsers, the draft streamed), measured in
the same run. For each: seconds from ``Popen`` to the first byte of the answer on stdout,
to the process's exit, and its CPU seconds (user + system); the ratio old / new.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core import paths

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median, save, table

QUESTION = "What is the capital of France?"
BASELINE_COMMIT = "713d573"  # the last commit before issue 27's `ert chat` work
REPO = Path(__file__).resolve().parent.parent


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_call(root: Path, env: dict[str, str]) -> dict[str, Any]:
    """One ``python -m core chat`` with ``root`` first on the path: its timings and output."""
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "core", "chat", QUESTION], cwd=root,
                            env={**env, "PYTHONPATH": str(root)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    first = proc.stdout.read(1)
    first_s = time.perf_counter() - started
    out = first + proc.stdout.read()
    err = proc.stderr.read()
    proc.wait()
    return {"first_token_s": round(first_s, 3) if first else None,
            "total_s": round(time.perf_counter() - started, 3),
            "cpu_s": round(_children_cpu() - cpu, 3), "rc": proc.returncode,
            "answer": out.decode(errors="replace").strip(),
            "progress_bars": "Loading weights" in err.decode(errors="replace")}


def _baseline(commit: str, into: Path) -> Path | None:
    """``core/`` and ``configs/`` as they were at ``commit``, or None where git has no such
    commit (a shallow clone)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "core", "configs"],
                             capture_output=True)
    if archive.returncode:
        return None
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench chat_start")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT)
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="ert-bench-chat-"))
    env = {**os.environ, "ERT_HOME": str(home), "ERT_CACHE_DIR": str(paths.cache_dir()),
           "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    sides = {"new": REPO}
    try:
        old = _baseline(args.baseline_commit, home / "baseline")
        if old is None:
            print(f"no commit {args.baseline_commit} here: measuring the new path alone",
                  file=sys.stderr)
        else:
            sides["old"] = old
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        for side, root in sides.items():  # warm: weights converted and packed, files cached
            warm = one_call(root, env)
            if warm["rc"]:
                raise SystemExit(f"{side}: ert chat failed: {warm}")
        for _ in range(args.repeats):
            for side, root in sides.items():
                runs[side].append(one_call(root, env))
                print(f"  {side}: {runs[side][-1]}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    rows = []
    for side, calls in runs.items():
        rows.append({"path": side, "first answer token s (median)":
                     median([c["first_token_s"] for c in calls]),
                     "min": min(c["first_token_s"] for c in calls),
                     "total s (median)": median([c["total_s"] for c in calls]),
                     "min ": min(c["total_s"] for c in calls),
                     "CPU s (median)": median([c["cpu_s"] for c in calls]),
                     "progress bars": any(c["progress_bars"] for c in calls),
                     "answer": calls[0]["answer"]})
    load = os.getloadavg()
    print(table(rows, f'`ert chat "{QUESTION}"`, warm cache, {args.repeats} calls each, '
                      f"interleaved; load average {load[0]:.1f} at the end"))
    result: dict[str, Any] = {"rows": rows, "runs": runs, "loadavg": load,
                              "baseline_commit": args.baseline_commit if "old" in sides else None}
    if "old" in sides:
        for key in ("first answer token s (median)", "total s (median)", "CPU s (median)"):
            ratio = rows[1][key] / rows[0][key]
            result[f"old/new {key}"] = round(ratio, 2)
            print(f"old / new, {key}: x{ratio:.2f}")
    print(f"saved {save('chat_start', result)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
