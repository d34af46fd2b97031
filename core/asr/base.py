"""The one interface every ASR backend implements, and the options it takes.

A backend owns one model: ``load()`` it, ``transcribe()`` batches of 16 kHz
mono float32 arrays, ``free()`` it. The evaluation runs many models one after
another on a small machine, so ``free()`` must give the memory back for real
before the next model loads.
"""

from __future__ import annotations

import gc
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from core.asr.registry import AsrModelSpec

SAMPLE_RATE = 16_000


@dataclass
class DecodeOptions:
    """How to decode; every backend honours what applies to it and ignores the rest.

    ``beam_size=1`` is greedy decoding: deterministic, and the fastest on a CPU.
    ``language`` is an ISO 639-1 code ("fr"); ``None`` lets Whisper detect it
    and uses the model's own language elsewhere.
    """

    language: str | None = None
    task: str = "transcribe"  # or "translate" (to English; Whisper only)
    beam_size: int = 1
    max_new_tokens: int | None = None
    batch_size: int = 8
    chunk_seconds: float = 30.0  # window for audio longer than the model's context
    stride_seconds: float = 5.0  # CTC only: context on each side of a window, then dropped
    prompt: str | None = None  # instruction for chat models (Gemma 3n)
    # Whether faster-whisper splits long audio at pauses (Silero VAD) rather than
    # at fixed windows; clips under ``chunk_seconds`` are never cut.
    vad_filter: bool = True
    # faster-whisper: decode several short clips in one 30 s window (see its backend).
    pack_short: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # passed through to generate()


@dataclass
class Transcript:
    """One clip's result. ``seconds`` is the compute time attributed to the clip
    (its batch's wall time, split in proportion to audio length)."""

    text: str
    seconds: float
    audio_seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def rtf(self) -> float:
        """Real-time factor: compute seconds per second of audio (lower is faster)."""
        return self.seconds / self.audio_seconds if self.audio_seconds else 0.0


class Backend(ABC):
    """One ASR model behind ``load`` / ``transcribe`` / ``free``.

    Subclasses implement :meth:`_load`, :meth:`_transcribe_batch` (texts for
    one padded batch) and list the attributes that hold the model in
    ``_model_attrs``; batching, ordering, timing and per-clip errors live here
    so every backend reports the same way.
    """

    _model_attrs: tuple[str, ...] = ()

    def __init__(self, spec: AsrModelSpec, device: str = "cpu") -> None:
        self.spec = spec
        self.device = device
        self.load_seconds: float | None = None

    # -- lifecycle ---------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self.load_seconds is not None

    def load(self) -> None:
        """Load the model (idempotent). Raises ``ModelUnavailableError`` with a user message."""
        if self.loaded:
            return
        started = time.perf_counter()
        self._load()
        self.load_seconds = time.perf_counter() - started

    def free(self) -> None:
        """Drop every reference to the model, collect, and empty the CUDA cache."""
        for name in self._model_attrs:
            setattr(self, name, None)
        self.load_seconds = None
        gc.collect()
        if self.device.startswith("cuda") and "torch" in sys.modules:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def __enter__(self) -> Backend:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    # -- inference ---------------------------------------------------------
    def transcribe(self, batch: Sequence[np.ndarray],
                   options: DecodeOptions | None = None) -> list[Transcript]:
        """Transcribe clips (16 kHz mono float32), in the order given.

        Clips are sorted by length so each sub-batch of ``options.batch_size``
        pads little; a failing sub-batch is retried clip by clip so one bad
        clip costs only its own transcript (``error`` set, text empty).
        """
        options = options or DecodeOptions()
        self.load()
        clips = [_as_clip(audio) for audio in batch]
        results: list[Transcript | None] = [None] * len(clips)
        order = sorted((i for i, clip in enumerate(clips) if clip.size),
                       key=lambda i: clips[i].size)
        for i, clip in enumerate(clips):
            if not clip.size:
                results[i] = Transcript(text="", seconds=0.0, audio_seconds=0.0)
        size = max(1, options.batch_size)
        for start in range(0, len(order), size):
            indices = order[start:start + size]
            for i, transcript in zip(indices, self._run([clips[i] for i in indices], options),
                                     strict=True):
                results[i] = transcript
        return [r for r in results if r is not None]

    def _run(self, clips: list[np.ndarray], options: DecodeOptions) -> list[Transcript]:
        started = time.perf_counter()
        try:
            texts = self._transcribe_batch(clips, options)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:
            if len(clips) > 1:
                return [t for clip in clips for t in self._run([clip], options)]
            seconds = clips[0].size / SAMPLE_RATE
            return [Transcript("", time.perf_counter() - started, seconds,
                               error=f"{type(exc).__name__}: {exc}")]
        elapsed = time.perf_counter() - started
        total = sum(clip.size for clip in clips)
        return [Transcript(text=text.strip(), seconds=elapsed * clip.size / total,
                           audio_seconds=clip.size / SAMPLE_RATE)
                for text, clip in zip(texts, clips, strict=True)]

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _transcribe_batch(self, clips: list[np.ndarray], options: DecodeOptions) -> list[str]:
        """Texts for non-empty clips, in order; long clips are the backend's to chunk."""


def _as_clip(audio: np.ndarray) -> np.ndarray:
    """A contiguous 1-D float32 array; stereo is averaged rather than refused."""
    clip = np.asarray(audio, dtype=np.float32)
    if clip.ndim == 2:
        clip = clip.mean(axis=0 if clip.shape[0] < clip.shape[1] else 1)
    if clip.ndim != 1:
        raise ValueError(f"expected mono audio (1-D array), got shape {clip.shape}")
    return np.ascontiguousarray(clip)
