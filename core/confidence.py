"""Confidence intervals for corpus WER by a paired bootstrap over utterances.

A WER gap between two models on 30 clips may be noise. Resampling the
utterances (with replacement) and recomputing the corpus WER from
per-utterance error and word counts shows how much the figure would move on
another draw of the same kind of test set (Bisani & Ney, 2004). For a
candidate against a baseline the *same* resampled utterances are used for
both, so what the two share (hard clips) cancels out and the interval of the
difference is much tighter than the two separate intervals suggest.

Everything is vectorised: 10,000 utterances × 1,000 resamples is one
gather and one sum per chunk of resamples. The seed is fixed, so the same
rows always give the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

N_RESAMPLES = 1000
LEVEL = 0.95
SEED = 0
# Resamples × utterances gathered at once: ~2 MB of indices, which stays in cache (a 40 MB
# chunk was twice as slow). Drawing the indices is most of the cost; int64 draws are faster
# than int32 ones in numpy's generator.
_CHUNK_CELLS = 250_000


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile-bootstrap interval (fractions, like WER)."""

    value: float
    low: float
    high: float
    p_value: float | None = None  # paired deltas: two-sided bootstrap p-value

    def as_list(self) -> list[float]:
        return [self.low, self.high]

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def _resample_sums(columns: Sequence[np.ndarray], n_resamples: int, seed: int
                   ) -> list[np.ndarray]:
    """Per resample, the sum of each column over the same resampled utterances."""
    n = len(columns[0])
    rng = np.random.default_rng(seed)
    out = [np.empty(n_resamples, dtype=np.float64) for _ in columns]
    step = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, n_resamples, step):
        stop = min(start + step, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        for column, sums in zip(columns, out, strict=True):
            sums[start:stop] = np.take(column, idx).sum(axis=1)
    return out


def _ratio(errors: np.ndarray, words: np.ndarray) -> np.ndarray:
    return errors / np.maximum(words, 1)


def _interval(value: float, samples: np.ndarray, level: float) -> Interval:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(float(value), float(low), float(high))


def wer_interval(errors: Sequence[int], words: Sequence[int], *, n_resamples: int = N_RESAMPLES,
                 level: float = LEVEL, seed: int = SEED) -> Interval | None:
    """Corpus WER (Σ errors / Σ words) and its bootstrap interval; None without utterances."""
    e = np.asarray(errors, dtype=np.float64)
    w = np.asarray(words, dtype=np.float64)
    if e.size == 0:
        return None
    value = float(e.sum() / max(w.sum(), 1))
    se, sw = _resample_sums([e, w], n_resamples, seed)
    return _interval(value, _ratio(se, sw), level)


def paired_delta_interval(base_errors: Sequence[int], base_words: Sequence[int],
                          cand_errors: Sequence[int], cand_words: Sequence[int], *,
                          n_resamples: int = N_RESAMPLES, level: float = LEVEL,
                          seed: int = SEED) -> Interval | None:
    """Candidate WER minus baseline WER on the same utterances (aligned by position).

    Negative is fewer errors. The difference is significant at ``level`` when
    its interval excludes 0 (:attr:`Interval.excludes_zero`).
    """
    be, bw = np.asarray(base_errors, np.float64), np.asarray(base_words, np.float64)
    ce, cw = np.asarray(cand_errors, np.float64), np.asarray(cand_words, np.float64)
    if be.size == 0:
        return None
    if not (be.size == bw.size == ce.size == cw.size):
        raise ValueError("paired bootstrap needs the same utterances on both sides")
    value = float(ce.sum() / max(cw.sum(), 1) - be.sum() / max(bw.sum(), 1))
    sbe, sbw, sce, scw = _resample_sums([be, bw, ce, cw], n_resamples, seed)
    deltas = _ratio(sce, scw) - _ratio(sbe, sbw)
    interval = _interval(value, deltas, level)
    # Two-sided bootstrap p-value: how often a resample lands on the other side of 0 (for
    # multiple-comparison adjustments, core.slices); never 0 with a finite resample count.
    share = min(float((deltas <= 0).mean()), float((deltas >= 0).mean()))
    return Interval(interval.value, interval.low, interval.high,
                    min(1.0, max(2 * share, 1 / n_resamples)))


class Counted(Protocol):
    """An utterance's error and reference-word counts (:class:`core.metrics.SampleScore`)."""

    word_errors: int
    ref_words: int


def paired_change(pairs: Sequence[tuple[Counted, Counted]]) -> Interval | None:
    """:func:`paired_delta_interval` of (baseline, candidate) utterance pairs: the one way
    every paired WER change (a baseline's verdict, a slice's, a condition against clean) is
    measured. None without pairs."""
    return paired_delta_interval([b.word_errors for b, _ in pairs],
                                 [b.ref_words for b, _ in pairs],
                                 [c.word_errors for _, c in pairs],
                                 [c.ref_words for _, c in pairs])
