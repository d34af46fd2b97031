"""ASR through transformers: Whisper, Wav2Vec2 CTC, SeamlessM4T and Gemma 3n.

One runner per family turns a padded batch into texts (:mod:`core.asr.whisper_runner`,
the others in :mod:`core.asr.transformers_runners`); the backend loads it
(in the dtype :func:`core.asr.dtype.load_dtype` picks: bf16 on a CPU with native
bf16, else fp32; bf16/fp16 on GPU; SDPA attention), runs it under
``torch.inference_mode()`` and frees it. Every runner batches for real:
clips are padded together and attention masks tell the model what is padding.
"""

from __future__ import annotations

from core import threads
from core.asr import cuda_warmup
from core.asr.base import Backend, DecodeOptions
from core.asr.dtype import load_dtype
from core.asr.timing import NONE, SEGMENT, WORD, Segment
from core.asr.transformers_runners import CtcRunner, Gemma3nRunner, Runner, SeamlessRunner
from core.asr.whisper_runner import WhisperRunner
from core.devices import is_cuda
from core.hub import ModelUnavailableError, friendly_hub_errors

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

# What each family can place in time: Whisper's timestamp tokens give segments, a CTC
# model's frames give words; Seamless and Gemma 3n give no timestamps.
TIMESTAMPS: dict[str, str] = {"whisper": SEGMENT, "wav2vec2": WORD}

RUNNERS: dict[str, type[Runner]] = {
    "whisper": WhisperRunner,
    "wav2vec2": CtcRunner,
    "seamless": SeamlessRunner,
    "gemma3n": Gemma3nRunner,
}


class TransformersBackend(Backend):
    """A transformers checkpoint (hub id or local folder) of one of :data:`RUNNERS`."""

    _model_attrs = ("runner",)
    # float16 on GPUs without bf16: the same size. Floor and speed measured as in core.asr.memory.
    # These are the defaults; core.asr.dtype picks bf16 on a CPU that has it, or as asked.
    weight_dtypes = {"cpu": "float32", "cuda": "bfloat16"}
    dtype_choices = ("float32", "bfloat16")
    families = tuple(RUNNERS)
    activation_floor_gb = 0.07
    rtfx_prior = {"cpu": 4.0, "cuda": 100.0}
    counts_from_config = True
    runner: Runner | None = None

    @property
    def model(self) -> Any:
        return self.runner.model if self.runner else None

    def preload(self) -> None:
        threads.apply_torch()
        import torch  # noqa: F401
        from transformers import AutoProcessor, PreTrainedModel  # noqa: F401

    def _load(self) -> None:
        threads.apply_torch()
        import torch

        if self.spec.family not in RUNNERS:
            raise ModelUnavailableError(f"no transformers runner for family {self.spec.family!r}")
        name = load_dtype(self.spec, self.device, self.requested_dtype)
        if is_cuda(self.device):
            if not torch.cuda.is_available():
                raise ModelUnavailableError("GPU mode is not available: torch sees no CUDA device")
            if name == "bfloat16" and not torch.cuda.is_bf16_supported():
                name = "float16"  # the same size, so the estimate holds
        local = Path(self.spec.source).expanduser()
        where = str(local) if local.exists() else self.spec.source
        # CUDA's libraries load on a thread while the runner imports transformers.
        warming = (cuda_warmup.start(self.device, getattr(torch, name))
                   if is_cuda(self.device) else None)
        try:
            with friendly_hub_errors(self.spec.source):
                self.runner = RUNNERS[self.spec.family](where, self.spec, getattr(torch, name),
                                                        self.device)
        finally:
            if warming is not None:
                warming.join()
        self.dtype = name

    def timestamp_level(self) -> str:
        return TIMESTAMPS.get(self.spec.family, NONE)

    def _segments(self, clip: np.ndarray, options: DecodeOptions, words: bool
                  ) -> Iterator[Segment]:
        import torch

        assert self.runner is not None
        with torch.inference_mode():
            yield from self.runner.segments(clip, options)  # type: ignore[attr-defined]

    def _transcribe_batch(self, clips: list[np.ndarray], options: DecodeOptions) -> list[str]:
        import torch

        assert self.runner is not None
        with torch.inference_mode():
            return self.runner.transcribe(clips, options)

    def _detect_languages(self, clips: list[np.ndarray]) -> list[str | None]:
        import torch

        assert self.runner is not None
        with torch.inference_mode():
            return self.runner.detect_languages(clips)
