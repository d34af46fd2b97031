"""A backend whose costs are known sleeps, so speed figures can be checked against arithmetic.

Registered in a test with ``monkeypatch.setitem(factory.BACKENDS, "sleepy", SLEEPY)``.
"""

from __future__ import annotations

from core.asr.base import Backend, DecodeOptions
from core.audio import SAMPLE_RATE
from core.evaluation.run_dir import RunDir

import os
import time
from typing import ClassVar

import numpy as np

SLEEPY = "tests.evaluation.sleepy:SleepBackend"
LOAD_SECONDS = 0.4
BATCH_SECONDS = 0.05  # a batch's fixed cost
SECONDS_PER_AUDIO_SECOND = 0.1  # and its cost per second of audio: RTFx 10 at most


class SleepBackend(Backend):
    """Sleeps instead of computing; says "hello" for every clip.

    ``ERT_SLEEPY_CANCEL_AFTER=N`` with ``ERT_SLEEPY_RUN=<run folder>`` asks the run to
    cancel after the N-th batch, as a user's Cancel would.
    """

    remote: ClassVar[bool] = True  # no weights: the planner budgets nothing for it
    model: object | None = None
    _model_attrs = ("model",)
    batches = 0

    def _load(self) -> None:
        time.sleep(LOAD_SECONDS)
        self.model = object()

    def _transcribe_batch(self, clips: list[np.ndarray], options: DecodeOptions) -> list[str]:
        audio = sum(clip.size for clip in clips) / SAMPLE_RATE
        time.sleep(BATCH_SECONDS + SECONDS_PER_AUDIO_SECOND * audio)
        SleepBackend.batches += 1
        after = os.environ.get("ERT_SLEEPY_CANCEL_AFTER")
        if after and SleepBackend.batches == int(after):
            RunDir(os.environ["ERT_SLEEPY_RUN"]).request_cancel()
        return ["hello"] * len(clips)
