"""Transcribing one clip with several models, one at a time within the memory budget.

The Compare page's upload comparison uses this: each model is loaded
only if its derived memory need fits what is free now, transcribes, and is
freed before the next one loads.
"""

from __future__ import annotations

from core.asr.base import DecodeOptions
from core.asr.factory import create_backend
from core.asr.memory import need_gb
from core.asr.registry import AsrRegistry, load_asr_registry
from core.audio import SAMPLE_RATE
from core.metrics import rtfx as rtfx_of  # aliased: ClipResult.rtfx is a property
from core.metrics import score_sample
from core.system import BUDGET_SHARE, available_memory_gb, read_machine

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class ClipResult:
    model: str
    text: str = ""
    seconds: float = 0.0
    load_seconds: float | None = None
    audio_seconds: float = 0.0
    wer: float | None = None
    error: str | None = None

    @property
    def rtfx(self) -> float | None:
        return rtfx_of(self.audio_seconds, self.seconds)


def transcribe_clip(audio: np.ndarray, models: list[str], device: str = "cpu",
                    reference: str | None = None, language: str | None = None,
                    registry: AsrRegistry | None = None,
                    budget_gb: float | None = None, no_speech_filter: bool = False
                    ) -> Iterator[ClipResult]:
    """Yield one result per model as soon as it is done (errors are results too);
    ``no_speech_filter``: a clip without speech (VAD) is not decoded (faster-whisper)."""
    registry = registry or load_asr_registry()
    audio_seconds = audio.size / SAMPLE_RATE
    for key in models:
        result = ClipResult(model=key, audio_seconds=audio_seconds)
        try:
            spec = registry.get(key)
            free = available_memory_gb(read_machine(), device)
            limit = budget_gb if budget_gb is not None else free * BUDGET_SHARE
            need = need_gb(spec, device)
            if need > limit:
                raise MemoryError(f"needs {need:.1f} GB on {device}; {limit:.1f} GB may be used "
                                  "now")
            backend = create_backend(spec, device)
            try:
                backend.load()
                result.load_seconds = backend.load_seconds
                out = backend.transcribe([audio], DecodeOptions(
                    language=language, batch_size=1, no_speech_filter=no_speech_filter))[0]
            finally:
                backend.free()
            result.text, result.seconds, result.error = out.text, out.seconds, out.error
            if reference and reference.strip() and out.ok:
                result.wer = score_sample(reference, out.text, language).wer
        except Exception as exc:  # one model's failure is shown beside the others
            result.error = str(exc) if isinstance(exc, MemoryError) else \
                f"{type(exc).__name__}: {exc}"
        yield result
