"""The one interface every ASR backend implements, and the options it takes.

A backend owns one model: ``load()`` it, ``transcribe()`` batches of 16 kHz
mono float32 arrays, ``free()`` it. The evaluation runs many models one after
another on a small machine, so ``free()`` must give the memory back for real
before the next model loads.
"""

from __future__ import annotations

from core.asr.timing import NONE, WORD, Segment, clamp, require, text_of
from core.audio import SAMPLE_RATE
from core.devices import is_cuda

import dataclasses
import gc
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from core.asr.spec import AsrModelSpec


@dataclass
class DecodeOptions:
    """How to decode; every backend honours what applies to it and ignores the rest.

    ``beam_size=1`` is greedy decoding: deterministic, and the fastest on a CPU.
    ``language`` is an ISO 639-1 code ("fr") that overrides every clip's own;
    ``None`` decodes each clip in the language given with it, else the one
    detected for it (multilingual Whisper), else the model's own.
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
    # Clips in which the VAD (Silero, as faster-whisper ships it) finds no speech get an
    # empty transcript without being decoded (faster-whisper; Whisper writes "you" on
    # silence). Off by default: it changes what is measured; recorded with the decoding.
    no_speech_filter: bool = False
    # faster-whisper: decode several short clips in one shared 30 s window (see its
    # backend). Faster, but a clip's text then depends on its neighbours: an opt-in speed
    # mode, never the default of an evaluation.
    pack_short: bool = False
    # What to place in time besides the text (core.asr.timing: NONE, SEGMENT or WORD). Asked,
    # the text and its ``Transcript.segments`` come from one decode; a backend whose timed
    # decode differs from its plain one (transformers Whisper) then gives the timed text.
    timestamps: str = NONE
    extra: dict[str, Any] = field(default_factory=dict)  # passed through to generate()


@dataclass
class Transcript:
    """One clip's result. ``seconds`` is the compute time attributed to the clip
    (its batch's wall time, split in proportion to audio length); ``language``
    is the one it was decoded in (given, or detected when none was)."""

    text: str
    seconds: float
    audio_seconds: float
    error: str | None = None
    language: str | None = None
    # With ``DecodeOptions.timestamps``: the text's segments, in seconds within the clip.
    segments: list[Segment] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Backend(ABC):
    """One ASR model behind ``load`` / ``transcribe`` / ``free``.

    Subclasses implement :meth:`_load`, :meth:`_transcribe_batch` (texts for
    one padded batch) and list the attributes that hold the model in
    ``_model_attrs``; batching, ordering, timing and per-clip errors live here
    so every backend reports the same way.
    """

    _model_attrs: tuple[str, ...] = ()
    packing_retries = 0  # clips decoded again alone after a packed window ran away

    # What the memory estimate and the planner assume before anything loads, read through
    # :func:`core.asr.factory.backend_class`: each backend declares its own, beside its code.
    # The defaults here are cautious, for a backend that declares nothing.
    weight_dtypes: ClassVar[dict[str, str]] = {"cpu": "float32", "cuda": "float32"}  # by device
    activation_floor_gb: ClassVar[float] = 0.3  # a batch's cost whatever the model's size
    # Audio seconds per wall second of a 100M-parameter model, by device; the planner scales
    # it by size (a remote model's is taken as is). Rough: a run measures the real RTFx.
    rtfx_prior: ClassVar[dict[str, float]] = {"cpu": 4.0, "cuda": 100.0}
    remote: ClassVar[bool] = False  # the model runs elsewhere: no weights in this process
    counts_from_config: ClassVar[bool] = False  # transformers config.json gives exact params
    # The dtypes a run or a registry entry may ask it to load in (core.asr.dtype decides);
    # empty: it always loads in ``weight_dtypes``.
    dtype_choices: ClassVar[tuple[str, ...]] = ()
    # What it can place in time (core.asr.timing): NONE, SEGMENT or WORD (segments and words).
    timestamps: ClassVar[str] = NONE
    # The model families (core.asr.families) it runs, checked when the registry is read;
    # empty: any declared family (e.g. a served model).
    families: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: AsrModelSpec, device: str = "cpu", dtype: str = "auto") -> None:
        self.spec = spec
        self.device = device
        self.requested_dtype = dtype  # the run's --dtype: "auto", "float32" or "bfloat16"
        self.dtype: str | None = None  # what the weights really loaded in, once loaded
        self.load_seconds: float | None = None

    # -- lifecycle ---------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self.load_seconds is not None

    def load(self) -> None:
        """Load the model (idempotent). Raises ``ModelUnavailableError`` with a user message."""
        if self.loaded:
            return
        self.require_available()
        started = time.perf_counter()
        self._load()
        self.load_seconds = time.perf_counter() - started

    def require_available(self) -> None:
        """Fail at once, with the reason, for a model that is not on this machine and that
        the hub cannot send now, rather than through the hub client's retries (minutes).
        (The evaluation worker checks before :meth:`preload`'s imports, with the download's
        size: :func:`core.asr.availability.require`.)"""
        if self.remote or self.spec.is_bundled:
            return  # a bundled model's own check says which package is missing
        from core import hub

        hub.require_available(self.spec.source, self.spec.revision)

    def preload(self) -> None:
        """Import what :meth:`load` needs without loading anything: an evaluation worker
        started while the batch before its own runs does this meanwhile (torch and
        transformers take 3 s to import here, 14 s on the GPU image). Here: nothing."""
        return None

    def free(self) -> None:
        """Drop every reference to the model, collect, and empty the CUDA cache."""
        for name in self._model_attrs:
            setattr(self, name, None)
        self.load_seconds = self.dtype = None
        gc.collect()
        if is_cuda(self.device) and "torch" in sys.modules:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def __enter__(self) -> Backend:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    # -- inference ---------------------------------------------------------
    def transcribe(self, batch: Sequence[np.ndarray], options: DecodeOptions | None = None,
                   languages: Sequence[str | None] | None = None) -> list[Transcript]:
        """Transcribe clips (16 kHz mono float32), in the order given, each on its own.

        Each clip is decoded in ``options.language`` if set, else its entry of
        ``languages``, else the language :meth:`detect_languages` finds for it:
        clips are grouped by language, so one clip's language never decides
        another's. Within a group clips are sorted by length so each sub-batch
        of ``options.batch_size`` pads little; a failing sub-batch is retried
        clip by clip so one bad clip costs only its own transcript (``error``
        set, text empty).
        """
        options = options or DecodeOptions()
        if options.timestamps != NONE:  # refused before anything loads
            require(self.spec.key, self.timestamp_level(), options.timestamps == WORD)
        self.load()
        clips = [_as_clip(audio) for audio in batch]
        given = list(languages) if languages is not None else [None] * len(clips)
        if len(given) != len(clips):
            raise ValueError(f"{len(given)} languages for {len(clips)} clips")
        wanted = [options.language or lang for lang in given]
        results: list[Transcript | None] = [None] * len(clips)
        for i, clip in enumerate(clips):
            if not clip.size:
                results[i] = Transcript("", 0.0, 0.0, language=wanted[i],
                                        segments=[] if options.timestamps != NONE else None)
        unknown = [i for i, clip in enumerate(clips) if clip.size and wanted[i] is None]
        detect_seconds = 0.0
        if unknown:
            started = time.perf_counter()
            for i, lang in zip(unknown, self._safe_detect([clips[i] for i in unknown]),
                               strict=True):
                wanted[i] = lang
            detect_seconds = time.perf_counter() - started
        groups: dict[str | None, list[int]] = {}
        for i, clip in enumerate(clips):
            if clip.size:
                groups.setdefault(wanted[i], []).append(i)
        size = max(1, options.batch_size)
        for lang, members in groups.items():
            group_options = dataclasses.replace(options, language=lang)
            order = sorted(members, key=lambda i: clips[i].size)
            for start in range(0, len(order), size):
                indices = order[start:start + size]
                for i, transcript in zip(
                        indices, self._run([clips[i] for i in indices], group_options),
                        strict=True):
                    transcript.language = lang
                    results[i] = transcript
        if detect_seconds and unknown:  # detection is compute of the clips it ran on
            total = sum(clips[i].size for i in unknown)
            for i in unknown:
                results[i].seconds += detect_seconds * clips[i].size / total  # type: ignore[union-attr]
        return [r for r in results if r is not None]

    def detect_languages(self, clips: Sequence[np.ndarray]) -> list[str | None]:
        """The spoken language of each clip (ISO 639-1), where the model can tell."""
        self.load()
        return self._safe_detect([_as_clip(c) for c in clips])

    def _safe_detect(self, clips: list[np.ndarray]) -> list[str | None]:
        try:
            found = self._detect_languages(clips)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception:  # decoding still works without it: the model then picks its own
            return [None] * len(clips)
        return list(found)

    def _detect_languages(self, clips: list[np.ndarray]) -> list[str | None]:
        """Backends that can detect the language override this; the rest cannot tell."""
        return [None] * len(clips)

    def _run(self, clips: list[np.ndarray], options: DecodeOptions) -> list[Transcript]:
        started = time.perf_counter()
        timed: list[list[Segment]] | None = None
        try:
            if options.timestamps != NONE:
                decoded = self._timed_batch(clips, options)
                texts = [text for text, _ in decoded]
                timed = [_tidy(segments, clip.size / SAMPLE_RATE)
                         for (_, segments), clip in zip(decoded, clips, strict=True)]
            else:
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
                           audio_seconds=clip.size / SAMPLE_RATE,
                           segments=None if timed is None else timed[k])
                for k, (text, clip) in enumerate(zip(texts, clips, strict=True))]

    # -- timestamps ----------------------------------------------------------
    def timestamp_level(self) -> str:
        """What this model can place in time (a backend whose families differ overrides)."""
        return self.timestamps

    def _timed_batch(self, clips: list[np.ndarray], options: DecodeOptions
                     ) -> list[tuple[str, list[Segment]]]:
        """Text and timed segments of non-empty clips, from one decode (``transcribe`` with
        ``options.timestamps``). Here: each clip's :meth:`_segments`, its text theirs; a
        backend that times a batch's plain decode overrides this."""
        words = options.timestamps == WORD
        decoded = [list(self._segments(clip, options, words)) for clip in clips]
        return [(text_of(segments), segments) for segments in decoded]

    def _segments(self, clip: np.ndarray, options: DecodeOptions, words: bool
                  ) -> Iterator[Segment]:
        """Timed segments of a non-empty clip; backends with timestamps override."""
        raise NotImplementedError

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _transcribe_batch(self, clips: list[np.ndarray], options: DecodeOptions) -> list[str]:
        """Texts for non-empty clips, in order; long clips are the backend's to chunk."""


def _tidy(segments: list[Segment], duration: float) -> list[Segment]:
    """Segments with text, inside the clip and in order (a model may stamp past it)."""
    kept: list[Segment] = []
    for segment in segments:
        if segment.text.strip():
            kept.append(clamp(segment, duration, floor=kept[-1].start if kept else 0.0))
    return kept


def _as_clip(audio: np.ndarray) -> np.ndarray:
    """A contiguous 1-D float32 array; stereo is averaged rather than refused."""
    clip = np.asarray(audio, dtype=np.float32)
    if clip.ndim == 2:
        clip = clip.mean(axis=0 if clip.shape[0] < clip.shape[1] else 1)
    if clip.ndim != 1:
        raise ValueError(f"expected mono audio (1-D array), got shape {clip.shape}")
    return np.ascontiguousarray(clip)
