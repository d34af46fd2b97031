"""The paired bootstrap behind every WER interval: 10,000 utterances × 1,000 resamples.

``python -m bench bootstrap``. Baseline, measured in the same run: the plain
implementation, one ``rng.integers`` draw and two sums per resample in a
Python loop. ERT: :mod:`core.confidence` (chunks of 25 resamples gathered at
once). Both are percentile bootstraps of the same statistic;
their draws differ, so their bounds agree to the bootstrap's own noise (both
are printed). Goal: < 1 s here.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.confidence import paired_delta_interval, wer_interval

import sys
from typing import Any

import numpy as np

from bench.common import median, save, table, timed

N_UTTERANCES = 10_000
N_RESAMPLES = 1_000
REPEATS = 3


def _loop_interval(errors: np.ndarray, words: np.ndarray) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    n = errors.size
    rates = np.empty(N_RESAMPLES)
    for b in range(N_RESAMPLES):
        idx = rng.integers(0, n, size=n)
        rates[b] = errors[idx].sum() / words[idx].sum()
    low, high = np.percentile(rates, [2.5, 97.5])
    return float(low), float(high)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    rng = np.random.default_rng(42)
    words = rng.integers(3, 40, size=N_UTTERANCES)
    base = rng.binomial(words, 0.2)
    cand = rng.binomial(words, 0.18)
    rows = []
    variants = [
        ("baseline: Python loop, one WER interval", lambda: _loop_interval(base, words)),
        ("ERT: one WER interval", lambda: wer_interval(base, words)),
        ("ERT: paired delta interval", lambda: paired_delta_interval(base, words, cand, words)),
    ]
    for name, run in variants:
        found = run()
        bounds = found if isinstance(found, tuple) else tuple(found.as_list())
        seconds = median([timed(run)[0] for _ in range(REPEATS)])
        rows.append({"variant": name, "seconds": seconds,
                     "interval %": f"[{100 * bounds[0]:.2f}, {100 * bounds[1]:.2f}]"})
        print(f"  {name}: {seconds:.3f} s", file=sys.stderr)
    for row in rows:
        row["x baseline"] = rows[0]["seconds"] / row["seconds"]
    print(table(rows, f"bootstrap, {N_UTTERANCES} utterances x {N_RESAMPLES} resamples"))
    result = {"utterances": N_UTTERANCES, "resamples": N_RESAMPLES, "rows": rows}
    print(f"saved {save('bootstrap', result)}")
    return result


if __name__ == "__main__":
    main()
