"""The seed's thread-cap claim: CPU load while generating, and right after, per thread setting.

``python -m bench threads`` — a fresh process per setting (thread pools are
fixed when the native libraries load): ``ERT_THREADS=1``, ``ERT_THREADS=2``
and uncapped (the libraries' own defaults, no ERT caps), for ERT's fast path
and for plain ``generate`` (``ERT_LLM_FAST=0``). Busy cores = process CPU
time / wall time, over the generation and over 3 s of idle after it.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)

import sys
from typing import Any

from bench.common import save, table
from bench.probe import run

TOKENS = 64
SETTINGS: tuple[int | str, ...] = (1, 2, "uncapped")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    rows = []
    for fast in ("1", "0"):
        for setting in SETTINGS:
            probe = run("threads", {"threads": setting, "tokens": TOKENS},
                        env={"ERT_LLM_FAST": fast})
            print(f"  {probe}", file=sys.stderr, flush=True)
            rows.append({"engine": "ERT fast" if fast == "1" else "transformers generate",
                         "threads": setting, "torch threads": probe["torch_threads"],
                         "tok/s (incl. prefill)": probe["tok_per_s"],
                         "busy cores generating": probe["busy_cores_generating"],
                         "busy cores idle after": probe["busy_cores_idle_after"]})
    print(table(rows, f"CPU load per thread setting, {TOKENS} greedy tokens, fresh process each"))
    result = {"tokens": TOKENS, "rows": rows}
    print(f"saved {save('threads', result)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
