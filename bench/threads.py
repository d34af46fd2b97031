"""The seed's thread-cap claim: CPU load while generating, and right after, per thread setting.

``python -m bench threads`` — a fresh process per setting (thread pools are
fixed when the native libraries load): ``ERT_THREADS=1``, ``ERT_THREADS=2``,
``ERT_THREADS=2`` with ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP workers sleep
instead of spinning between parallel regions) and uncapped (the libraries'
own defaults, no ERT caps), for ERT's fast path and for plain ``generate``
(``ERT_LLM_FAST=0``). Busy cores = process CPU time / wall time, over the
generation and over 3 s of idle after it.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)

import sys
from typing import Any

from bench.common import median, save, table
from bench.probe import run

TOKENS = 64
REPEATS = 1
SETTINGS: tuple[tuple[str, int | str, dict[str, str]], ...] = (
    ("ERT_THREADS=1", 1, {}),
    ("ERT_THREADS=2", 2, {}),
    ("ERT_THREADS=2, OMP_WAIT_POLICY=PASSIVE", 2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    ("uncapped", "uncapped", {}),
)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    jobs = [(fast, *setting) for fast in ("1", "0") for setting in SETTINGS]
    probes: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(jobs))}
    for rep in range(REPEATS):
        order = list(range(len(jobs)))
        for i in order[rep:] + order[:rep]:  # rotate: no setting always runs first
            fast, label, setting, env = jobs[i]
            tokens = TOKENS if fast == "1" else TOKENS // 3
            probes[i].append(run("threads", {"threads": setting, "tokens": tokens},
                                 env={"ERT_LLM_FAST": fast, **env}))
            print(f"  {label}, fast={fast}: {probes[i][-1]}", file=sys.stderr, flush=True)
    rows = []
    for i, (fast, label, _, _) in enumerate(jobs):
        got = probes[i]
        decode = [p["decode_tok_per_s"] for p in got if p["decode_tok_per_s"]]
        rows.append({"engine": "ERT fast" if fast == "1" else "transformers generate",
                     "setting": label, "torch threads": got[0]["torch_threads"],
                     "tokens": got[0]["tokens"],
                     "tok/s (incl. prefill)": median([p["tok_per_s"] for p in got]),
                     "decode tok/s": median(decode) if decode else None,
                     "busy cores generating": median([p["busy_cores_generating"] for p in got]),
                     "busy cores idle after": max(p["busy_cores_idle_after"] for p in got)})
    print(table(rows, f"CPU load per thread setting, greedy, fresh process each, median of "
                      f"{REPEATS} processes x 2 runs (idle: max over 3 s after)"))
    result = {"rows": rows, "raw": {jobs[i][1] + f" fast={jobs[i][0]}": v
                                    for i, v in probes.items()}}
    print(f"saved {save('threads', result)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
