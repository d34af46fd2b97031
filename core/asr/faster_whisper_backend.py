"""Whisper through CTranslate2 (faster-whisper): the offline default backend.

int8 on the CPU (a quarter of the fp32 memory, and faster on small CPUs),
float16 on the GPU. A batch of clips is sent as one concatenated array with
one ``clip_timestamps`` window per clip (or per ≤ 30 s piece of a long clip),
so :class:`faster_whisper.BatchedInferencePipeline` decodes windows of
*different* clips together instead of one clip at a time — each window
still holds one clip only, so a clip's text does not depend on its batch.

``DecodeOptions.pack_short`` (opt-in) packs several short clips into one
shared window: faster on the CPU, but the model then sees a collage. A window
whose text looks like a decoding loop, or that left a clip empty, is decoded
again clip by clip (:mod:`core.asr.runaway`); ``packing_retries`` counts them.
"""

from __future__ import annotations

from core import bundled, threads
from core.asr.base import Backend, DecodeOptions
from core.asr.dtype import load_dtype
from core.asr.runaway import is_runaway
from core.asr.timing import WORD, Segment, Word, group_words
from core.asr.vad import speech_windows, windows
from core.asr.windows import Span
from core.audio import SAMPLE_RATE
from core.devices import cuda_index, device_kind, is_cuda
from core.hub import ModelUnavailableError, friendly_hub_errors

import bisect
from pathlib import Path
from typing import Any

import numpy as np

WHISPER_WINDOW_SECONDS = 30.0
FRAMES_PER_SECOND = 100  # faster-whisper reports a window's offset in 10 ms frames
MIN_WINDOW = 2 * SAMPLE_RATE // FRAMES_PER_SECOND  # shorter windows hold no speech
PACK_GAP_SECONDS = 1.0  # silence between packed clips: Whisper keeps their words apart


class FasterWhisperBackend(Backend):
    """A CTranslate2 Whisper model from a bundled folder, a local folder or the hub."""

    _model_attrs = ("model", "pipeline")
    weight_dtypes = {"cpu": "int8", "cuda": "float16"}  # CTranslate2 compute types
    activation_floor_gb = 0.30  # measured, see core.asr.memory
    rtfx_prior = {"cpu": 12.0, "cuda": 150.0}
    counts_from_config = False  # a CTranslate2 folder carries no transformers config
    timestamps = WORD  # its own segment and word timestamps
    families = ("whisper",)  # CTranslate2 conversions of Whisper
    model: Any = None  # faster_whisper.WhisperModel once loaded
    pipeline: Any = None  # its BatchedInferencePipeline

    @property
    def compute_type(self) -> str:
        """The declared type for the device, through the one policy (a request changes none)."""
        return load_dtype(self.spec, self.device, self.requested_dtype)

    def _where(self) -> str:
        if self.spec.is_bundled:
            try:
                return str(bundled.locate(self.spec.bundled_name))
            except bundled.BundledModelError as exc:
                raise ModelUnavailableError(str(exc)) from exc
        local = Path(self.spec.source).expanduser()
        return str(local) if local.exists() else self.spec.source

    def preload(self) -> None:
        import ctranslate2  # noqa: F401
        import faster_whisper  # noqa: F401

    def _load(self) -> None:
        import ctranslate2
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        if is_cuda(self.device) and ctranslate2.get_cuda_device_count() == 0:
            raise ModelUnavailableError(
                "GPU mode is not available: CTranslate2 sees no CUDA device")
        where = self._where()
        with friendly_hub_errors(self.spec.source):
            self.model = WhisperModel(
                where, device=device_kind(self.device), device_index=cuda_index(self.device) or 0,
                compute_type=self.compute_type, cpu_threads=threads.current().threads,
                revision=self.spec.revision)
        self.pipeline = BatchedInferencePipeline(self.model)
        self.dtype = self.compute_type

    def _windows(self, clip: np.ndarray, options: DecodeOptions) -> list[Span]:
        """≤ 30 s windows of a clip: the whole clip when it fits, else cut at pauses."""
        window = int(min(options.chunk_seconds, WHISPER_WINDOW_SECONDS) * SAMPLE_RATE)
        if options.no_speech_filter and clip.size <= window and not speech_windows(clip, window):
            return []  # no speech: nothing to decode, an empty transcript
        return [s for s in windows(clip, window, options.vad_filter) if s.size >= MIN_WINDOW]

    def _layout(self, clips: list[np.ndarray], options: DecodeOptions, pack: bool
                ) -> tuple[list[np.ndarray], list[tuple[int, int, int]], list[Span]]:
        """Lay the clips out on one timeline: the audio pieces, each clip's (index, start,
        end) there, and the ≤ 30 s decoding windows.

        Without ``pack`` every clip has windows of its own, back to back. With it,
        short clips are packed, in order and separated by ``PACK_GAP_SECONDS`` of
        silence, into shared windows (Whisper pads every window to 30 s, so a 4 s
        clip alone costs the encoder a 30 s window); words are given back to their
        clip by their timestamps. Long clips always keep windows of their own.
        """
        limit = int((min(options.chunk_seconds, WHISPER_WINDOW_SECONDS) - 1) * SAMPLE_RATE)
        gap = np.zeros(int(PACK_GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
        pieces: list[np.ndarray] = []
        owners: list[tuple[int, int, int]] = []
        windows: list[Span] = []
        pos = 0
        open_window: Span | None = None
        for i, clip in enumerate(clips):
            if pack and clip.size + gap.size <= limit:
                if open_window is None or pos + clip.size + gap.size - open_window.start > limit:
                    if open_window is not None:
                        windows.append(open_window)
                    open_window = Span(pos, pos)
                owners.append((i, pos, pos + clip.size))
                pieces += [clip, gap]
                pos += clip.size + gap.size
                open_window = Span(open_window.start, pos)
                continue
            if open_window is not None:
                windows.append(open_window)
                open_window = None
            owners.append((i, pos, pos + clip.size))
            windows += [Span(pos + w.start, pos + w.end) for w in self._windows(clip, options)]
            pieces.append(clip)
            pos += clip.size
        if open_window is not None:
            windows.append(open_window)
        return pieces, owners, [w for w in windows if w.size >= MIN_WINDOW]

    def _timed_batch(self, clips: list[np.ndarray], options: DecodeOptions
                     ) -> list[tuple[str, list[Segment]]]:
        """The plain batched decode (the very text an evaluation gets), its words placed by
        faster-whisper's cross-attention alignment, which changes no token, and grouped into
        segments at pauses (:func:`core.asr.timing.group_words`)."""
        texts, _shared, timed = self._decode(clips, options, pack=False, timed=True)
        return list(zip(texts, timed, strict=True))

    def _detect_languages(self, clips: list[np.ndarray]) -> list[str | None]:
        """Each clip's language from its first 30 s, the encoder run as one batch."""
        if not self.model.model.is_multilingual:
            return ["en"] * len(clips)
        from faster_whisper.audio import pad_or_trim

        extractor = self.model.feature_extractor
        features = np.stack([pad_or_trim(extractor(clip[:extractor.n_samples])[..., :-1])
                             for clip in clips])
        encoded = self.model.encode(features)
        return [found[0][0][2:-2] for found in self.model.model.detect_language(encoded)]

    def _transcribe_batch(self, clips: list[np.ndarray], options: DecodeOptions) -> list[str]:
        texts, windows, _ = self._decode(clips, options, pack=options.pack_short)
        if not options.pack_short:
            return texts
        redo = sorted({i for members in windows if len(members) > 1 and _ran_away(
            [texts[i] for i in members]) for i in members})
        if redo:
            again, _, _ = self._decode([clips[i] for i in redo], options, pack=False)
            for i, text in zip(redo, again, strict=True):
                texts[i] = text
            self.packing_retries += len(redo)
        return texts

    def _decode(self, clips: list[np.ndarray], options: DecodeOptions, pack: bool,
                timed: bool = False
                ) -> tuple[list[str], list[list[int]], list[list[Segment]]]:
        """Texts per clip, which clips shared each window, and (``timed``, never packed) each
        clip's segments in seconds from its start."""
        pieces, owners, windows = self._layout(clips, options, pack)
        if not windows:
            return ["" for _ in clips], [], [[] for _ in clips]
        kwargs: dict[str, Any] = {
            "language": options.language, "task": options.task,
            "beam_size": max(1, options.beam_size), "temperature": 0.0,
            "max_new_tokens": options.max_new_tokens, "batch_size": max(1, options.batch_size),
            # Packed windows need word times to hand words back to their clips.
            "without_timestamps": True, "word_timestamps": pack or timed,
            "condition_on_previous_text": False, "vad_filter": False, "log_progress": False,
            "clip_timestamps": [{"start": w.start / SAMPLE_RATE, "end": w.end / SAMPLE_RATE}
                                for w in windows],
        }
        kwargs.update(options.extra)
        segments, _info = self.pipeline.transcribe(np.concatenate(pieces), **kwargs)
        starts = [start for _, start, _ in owners]

        def owner(position: float) -> int:
            k = max(0, bisect.bisect_right(starts, position) - 1)
            index, _start, end = owners[k]
            # A word in the silence after a clip belongs to the nearer neighbour.
            if position > end and k + 1 < len(owners) and \
                    owners[k + 1][1] - position < position - end:
                index = owners[k + 1][0]
            return index

        words: list[list[str]] = [[] for _ in clips]
        found: list[list[Segment]] = [[] for _ in clips]
        offsets = {i: start / SAMPLE_RATE for i, start, _ in owners}
        for segment in segments:
            if pack:
                for word in segment.words or []:
                    words[owner((word.start + word.end) / 2 * SAMPLE_RATE)].append(word.word)
            else:
                index = owner((segment.start + segment.end) / 2 * SAMPLE_RATE)
                words[index].append(" " + segment.text.strip())
                if timed:
                    found[index] += _at_pauses(segment, offsets[index])
        shared = [[i for i, start, end in owners if start < w.end and end > w.start]
                  for w in windows]
        return ["".join(parts).strip() for parts in words], shared, found


def _at_pauses(window: Any, offset: float) -> list[Segment]:
    """A decoded window as segments cut at pauses between its aligned words (the window
    itself when no word was placed), times from its clip's start, with the window's
    ``avg_logprob`` / ``no_speech_prob``."""
    words = [Word(w.word, w.start - offset, w.end - offset) for w in window.words or []]
    groups = group_words(words) if words else [
        Segment(window.start - offset, window.end - offset, window.text)]
    return [Segment(g.start, g.end, "".join(w.word for w in g.words).strip() if g.words
                    else g.text.strip(),
                    [Word(w.word.strip(), w.start, w.end) for w in g.words],
                    window.avg_logprob, window.no_speech_prob) for g in groups]


def _ran_away(texts: list[str]) -> bool:
    """A packed window whose text loops, or that left one of its clips empty."""
    return is_runaway(" ".join(texts)) or any(not t.strip() for t in texts)
