"""``python -m bench [NAME ...]``: run the named benchmarks, or all of them.

Each benchmark is a module with ``main(argv) -> dict`` that prints its table
and saves its figures under ``runs/bench/``. Run together, every benchmark
gets a fresh interpreter, so one's loaded models, thread settings and memory
peaks cannot leak into the next, and one failure does not stop the rest.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)

import importlib
import subprocess
import sys
import time

# name -> module; `make bench` runs them in this order. GPU-only ones are run by name.
BENCHMARKS = {
    "llm": "bench.llm",
    "load": "bench.load",
    "threads": "bench.threads",
    "rag": "bench.rag",
    "app": "bench.app",
    "asr": "bench.asr_cpu",
    "bootstrap": "bench.bootstrap",
    "scoring": "bench.scoring",
    "planning": "bench.planning",
    "dtype": "bench.dtype",
    "dtype_wer": "bench.dtype_wer",
    "evaluation": "bench.evaluation",
    "api": "bench.api",
    "qa": "bench.qa",
    "workers": "bench.workers",
}
BY_NAME_ONLY = {
    "llm_levers": "bench.llm_levers",
    "asr_multigpu": "bench.asr_multigpu",
    "asr_gpu": "bench.asr_gpu",
    "worker_start": "bench.worker_start",
    "worker_imports": "bench.worker_imports",
    "page_open": "bench.page_open",
    "chat_start": "bench.chat_start",
    "conditions": "bench.conditions",
    "chat_engine": "bench.chat_engine",
    "indexing": "bench.indexing",
}


def _usage() -> str:
    return ("usage: python -m bench [NAME ...] [-- ARGS]\n  all (default): "
            + ", ".join(BENCHMARKS) + "\n  by name only: " + ", ".join(BY_NAME_ONLY))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    if any(n in {"-h", "--help"} for n in names):
        print(_usage())
        return 0
    known = BENCHMARKS | BY_NAME_ONLY
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown benchmark(s) {unknown}\n{_usage()}", file=sys.stderr)
        return 2
    if len(names) == 1:  # in this process, so a traceback shows where it failed
        importlib.import_module(known[names[0]]).main(extra)
        return 0
    failed = []
    for name in names or list(BENCHMARKS):
        print(f"\n=== bench {name} ===", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", "bench", name, "--", *extra])
        print(f"=== bench {name}: {'ok' if code == 0 else f'FAILED ({code})'}, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
