"""The batch-size tuner."""

from __future__ import annotations

from core.evaluation.tuning import BatchSizeTuner


def test_tuner_finds_the_knee_of_the_throughput_curve():
    knee = {1: 10.0, 2: 18.0, 4: 30.0, 8: 70.0, 16: 20.0}
    tuner = BatchSizeTuner(start=1, max_size=64)
    size = tuner.size
    while not tuner.settled:
        size = tuner.observe(size, knee[size], 1.0)
    assert tuner.best == 8 and size == 8
    assert [p.batch_size for p in tuner.curve] == [1, 2, 4, 8, 16]


def test_tuner_does_not_grow_past_the_memory_budget():
    tuner = BatchSizeTuner(start=1, max_size=64, budget_gb=1.0)
    tuner.observe(1, 10.0, 1.0, peak_gb=0.4)
    assert tuner.observe(2, 30.0, 1.0, peak_gb=1.5) == 1
