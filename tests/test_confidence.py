"""The paired bootstrap behind every WER interval and baseline verdict."""

from __future__ import annotations

from core.confidence import paired_delta_interval, wer_interval

import numpy as np


def _utterances(n: int, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    words = rng.integers(5, 25, size=n)
    return rng.binomial(words, rate), words


def test_interval_holds_the_point_estimate() -> None:
    errors, words = _utterances(200, 0.2, seed=1)
    ci = wer_interval(errors, words)
    assert ci is not None
    assert ci.value == errors.sum() / words.sum()
    assert ci.low < ci.value < ci.high


def test_interval_narrows_as_samples_grow() -> None:
    widths = []
    for n in (30, 300, 3000):
        errors, words = _utterances(n, 0.2, seed=2)
        ci = wer_interval(errors, words)
        widths.append(ci.high - ci.low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] > 2 * widths[2]


def test_interval_is_reproducible_and_follows_the_seed() -> None:
    errors, words = _utterances(100, 0.3, seed=3)
    assert wer_interval(errors, words) == wer_interval(errors, words)
    assert wer_interval(errors, words, seed=1) != wer_interval(errors, words, seed=2)


def test_no_utterance_gives_no_interval() -> None:
    assert wer_interval([], []) is None
    assert paired_delta_interval([], [], [], []) is None


def test_a_chance_gap_on_few_samples_is_not_significant() -> None:
    # Two equally good models, 12 utterances: one differs by a couple of errors by chance.
    words = np.array([10, 12, 8, 15, 9, 11, 10, 14, 7, 13, 10, 12])
    base = np.array([2, 1, 3, 2, 1, 2, 3, 1, 2, 2, 1, 3])
    cand = np.array([1, 2, 2, 3, 1, 1, 3, 2, 1, 2, 2, 2])
    delta = paired_delta_interval(base, words, cand, words)
    assert delta is not None and delta.value != 0
    assert not delta.excludes_zero


def test_a_clear_gap_is_significant_with_the_right_sign() -> None:
    base_errors, words = _utterances(200, 0.30, seed=4)
    cand_errors = np.maximum(base_errors - np.random.default_rng(5).integers(1, 3, 200), 0)
    delta = paired_delta_interval(base_errors, words, cand_errors, words)
    assert delta.excludes_zero and delta.high < 0  # fewer errors: an improvement
    worse = paired_delta_interval(cand_errors, words, base_errors, words)
    assert worse.excludes_zero and worse.low > 0


def test_pairing_makes_a_consistent_small_gain_significant() -> None:
    # Hard and easy clips vary a lot; the candidate fixes one error on every clip. Unpaired
    # intervals overlap, the paired one does not hold 0.
    rng = np.random.default_rng(6)
    words = rng.integers(5, 30, size=80)
    base = np.minimum(rng.integers(1, 12, size=80), words)
    cand = base - 1
    a, b = wer_interval(base, words), wer_interval(cand, words)
    assert b.high > a.low  # the separate intervals overlap
    assert paired_delta_interval(base, words, cand, words).excludes_zero


def test_mismatched_pairs_are_refused() -> None:
    import pytest

    with pytest.raises(ValueError):
        paired_delta_interval([1, 2], [3, 4], [1], [3])
