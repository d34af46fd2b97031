"""The runner every transformers family shares, and the CTC, SeamlessM4T and Gemma 3n runners.

A runner loads one family's processor and model and turns a padded batch of clips into
texts; :class:`core.asr.transformers_backend.TransformersBackend` picks one by family and
runs it under ``torch.inference_mode()``. Whisper's runner, the largest, is
:mod:`core.asr.whisper_runner`. torch and transformers are imported inside the methods,
so importing this module (the registry does, through the backend) loads neither.
"""

from __future__ import annotations

from core.asr.base import DecodeOptions
from core.asr.timing import Segment, Word, group_words
from core.asr.windows import Span, split
from core.audio import SAMPLE_RATE
from core.devices import is_cuda
from core.hub import ModelUnavailableError
from core.languages import english_name, iso639_3

import importlib.util
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from core.asr.spec import AsrModelSpec


def batches(items: list[Any], size: int) -> list[list[Any]]:
    """``items`` in runs of ``size`` (at least 1), the last one shorter."""
    size = max(1, size)
    return [items[i:i + size] for i in range(0, len(items), size)]


class _LengthNotice(logging.Filter):
    """Drops generate()'s notice that ``max_new_tokens`` wins over the ``max_length`` a
    checkpoint carries (448 in Whisper's): ERT asks for ``max_new_tokens`` on purpose, and
    transformers repeats the notice on every call, a line per batch in a worker's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`max_new_tokens` will take precedence" not in record.getMessage()


def _quiet_length_notice() -> None:
    generation = logging.getLogger("transformers.generation.utils")
    if not any(isinstance(f, _LengthNotice) for f in generation.filters):
        generation.addFilter(_LengthNotice())


class Runner:
    """Loads one family's processor and model; turns clips into texts."""

    def __init__(self, where: str, spec: AsrModelSpec, dtype: Any, device: str) -> None:
        self.spec, self.dtype, self.device = spec, dtype, device
        _quiet_length_notice()
        self.common = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
        self.processor, self.model = self.load(where)
        self.model.eval()
        if is_cuda(device):
            self.model.to(device)

    def load(self, where: str) -> tuple[Any, Any]:
        raise NotImplementedError

    def from_pretrained(self, model_class: Any, where: str) -> Any:
        """Load with SDPA attention; an architecture without it gets its default.

        On a GPU the weights go straight to it (``device_map``): no full copy in host
        memory first, and no second pass to move it.
        """
        kwargs = {**self.common, "dtype": self.dtype}
        if is_cuda(self.device):
            kwargs["device_map"] = self.device
        try:
            return model_class.from_pretrained(where, attn_implementation="sdpa", **kwargs)
        except ValueError as exc:
            if "sdpa" not in str(exc).lower() and "scaled_dot_product" not in str(exc):
                raise
            return model_class.from_pretrained(where, **kwargs)

    def to_model(self, inputs: Any) -> dict[str, Any]:
        """Move a processor's output to the model's device; float tensors to its dtype."""
        moved = {}
        for name, value in inputs.items():
            if hasattr(value, "to"):
                value = value.to(self.device)
                if value.is_floating_point():
                    value = value.to(self.dtype)
            moved[name] = value
        return moved

    def transcribe(self, clips: list[np.ndarray], options: DecodeOptions) -> list[str]:
        raise NotImplementedError

    def detect_languages(self, clips: list[np.ndarray]) -> list[str | None]:
        """Families that cannot tell the spoken language say nothing."""
        return [None] * len(clips)



class CtcRunner(Runner):
    """Wav2Vec2-style CTC (French XLSR fine-tunes): greedy decoding of the logits.

    Long clips are cut into overlapping windows whose overlapping logits are
    dropped before one decode over the whole clip (:mod:`core.asr.windows`).
    The attention mask is passed when the feature extractor asks for it (the
    layer-norm "large" models); group-norm models were trained on zero padding.
    """

    def load(self, where: str) -> tuple[Any, Any]:
        from transformers import AutoModelForCTC, Wav2Vec2Processor

        # Wav2Vec2Processor, not AutoProcessor: repos with an n-gram LM would
        # otherwise need pyctcdecode and kenlm; greedy decoding needs neither.
        processor = Wav2Vec2Processor.from_pretrained(where, **self.common)
        model = self.from_pretrained(AutoModelForCTC, where)
        return processor, model

    def logits(self, clips: list[np.ndarray], options: DecodeOptions) -> list[Any]:
        """Per clip, its windows' logits without their context frames, end to end."""
        import torch

        window = int(options.chunk_seconds * SAMPLE_RATE)
        stride = int(min(options.stride_seconds, options.chunk_seconds / 4) * SAMPLE_RATE)
        pieces = [(i, span) for i, clip in enumerate(clips)
                  for span in split(clip.size, window, stride)]
        kept: list[list[Any]] = [[] for _ in clips]
        use_mask = bool(getattr(self.processor.feature_extractor, "return_attention_mask", True))
        ratio = self.model.config.inputs_to_logits_ratio
        for batch in batches(pieces, options.batch_size):
            audio = [clips[i][span.start:span.end] for i, span in batch]
            inputs = self.to_model(self.processor(
                audio, sampling_rate=SAMPLE_RATE, return_tensors="pt", padding=True,
                return_attention_mask=use_mask))
            logits = self.model(**inputs).logits
            lengths = self.model._get_feat_extract_output_lengths(
                torch.tensor([span.size for _, span in batch])).tolist()
            for row, ((i, span), frames) in enumerate(zip(batch, lengths, strict=True)):
                kept[i].append(_trim(logits[row, :frames], span, ratio))
        return [torch.cat(parts) for parts in kept]

    def segments(self, clip: np.ndarray, options: DecodeOptions) -> Iterator[Segment]:
        """Words timed by the frames that emitted them (one logit frame every
        ``inputs_to_logits_ratio`` samples), grouped into segments at pauses."""
        ids = self.logits([clip], options)[0].argmax(-1).cpu().tolist()
        decoded = self.processor.tokenizer.decode(ids, output_word_offsets=True)
        step = self.model.config.inputs_to_logits_ratio / SAMPLE_RATE
        yield from group_words([Word(o["word"], o["start_offset"] * step,
                                     o["end_offset"] * step) for o in decoded.word_offsets])

    def transcribe(self, clips: list[np.ndarray], options: DecodeOptions) -> list[str]:
        import torch

        ids = [logits.argmax(-1) for logits in self.logits(clips, options)]
        pad = self.processor.tokenizer.pad_token_id  # the CTC blank: padding decodes to nothing
        padded = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=pad)
        return self.processor.batch_decode(padded.cpu())


def _trim(logits: Any, span: Span, ratio: int) -> Any:
    """Drop the frames of a window's context-only edges."""
    left = round(span.left / ratio)
    right = round(span.right / ratio)
    return logits[left:logits.shape[0] - right]


class SeamlessRunner(Runner):
    """SeamlessM4T (v1 or v2) speech-to-text only: no speech decoder, no vocoder.

    The target language is the spoken one (transcription, not translation);
    clips are cut into ``chunk_seconds`` windows, whose texts are joined.
    """

    def load(self, where: str) -> tuple[Any, Any]:
        from transformers import (
            AutoConfig,
            AutoProcessor,
            SeamlessM4TForSpeechToText,
            SeamlessM4Tv2ForSpeechToText,
        )

        config = AutoConfig.from_pretrained(where, **self.common)
        model_class = (SeamlessM4Tv2ForSpeechToText if config.model_type == "seamless_m4t_v2"
                       else SeamlessM4TForSpeechToText)
        processor = AutoProcessor.from_pretrained(where, **self.common)
        model = self.from_pretrained(model_class, where)
        return processor, model

    def target_language(self, options: DecodeOptions) -> str:
        language = options.language or next(
            (lang for lang in self.spec.languages if lang != "*"), None)
        if language is None:
            raise ValueError("SeamlessM4T needs the spoken language: set the run's language")
        return iso639_3(language)  # Seamless names languages by ISO 639-3

    def transcribe(self, clips: list[np.ndarray], options: DecodeOptions) -> list[str]:
        tgt_lang = self.target_language(options)
        window = int(options.chunk_seconds * SAMPLE_RATE)
        pieces = [(i, span) for i, clip in enumerate(clips) for span in split(clip.size, window)]
        parts: list[list[str]] = [[] for _ in clips]
        kwargs: dict[str, Any] = {"num_beams": max(1, options.beam_size), "do_sample": False}
        if options.max_new_tokens:
            kwargs["max_new_tokens"] = options.max_new_tokens
        kwargs.update(options.extra)
        for batch in batches(pieces, options.batch_size):
            audio = [clips[i][span.start:span.end] for i, span in batch]
            inputs = self.to_model(self.processor(audio=audio, sampling_rate=SAMPLE_RATE,
                                                  return_tensors="pt", padding=True))
            ids = self.model.generate(**inputs, tgt_lang=tgt_lang, **kwargs)
            for (i, _span), text in zip(batch, self.processor.batch_decode(
                    ids, skip_special_tokens=True), strict=True):
                parts[i].append(text.strip())
        return [" ".join(p for p in texts if p) for texts in parts]


class Gemma3nRunner(Runner):
    """Gemma 3n, asked in a chat turn to transcribe an audio part.

    Its audio encoder takes at most 30 s, so longer clips are windowed. The
    prompts are left-padded into one batch and only the new tokens decoded.
    Batching must not change a transcript: each clip's audio frames are masked as if
    it were alone (:func:`gemma3n_frame_mask`) and encoded alone
    (:func:`encode_audio_per_clip`); the prompts and the decoding are batched.
    """

    def load(self, where: str) -> tuple[Any, Any]:
        missing = [name for name in ("timm", "torchvision")
                   if importlib.util.find_spec(name) is None]
        if missing:
            raise ModelUnavailableError(
                f"{self.spec.source}: Gemma 3n needs {' and '.join(missing)} for its vision "
                "tower: run the set-up again (it installs timm and torchvision==0.28.0)")
        from transformers import AutoProcessor, Gemma3nForConditionalGeneration

        processor = AutoProcessor.from_pretrained(where, **self.common)
        processor.tokenizer.padding_side = "left"
        model = self.from_pretrained(Gemma3nForConditionalGeneration, where)
        encode_audio_per_clip(model.model)
        return processor, model

    @staticmethod
    def prompt(options: DecodeOptions) -> str:
        if options.prompt:
            return options.prompt
        language = english_name(options.language)
        spoken = f" {language}" if language else ""
        return f"Transcribe this{spoken} audio verbatim. Output only the transcription."

    def transcribe(self, clips: list[np.ndarray], options: DecodeOptions) -> list[str]:
        window = int(min(options.chunk_seconds, 30.0) * SAMPLE_RATE)
        pieces = [(i, span) for i, clip in enumerate(clips) for span in split(clip.size, window)]
        parts: list[list[str]] = [[] for _ in clips]
        prompt = self.prompt(options)
        for batch in batches(pieces, options.batch_size):
            conversations = [[{"role": "user", "content": [
                {"type": "audio", "audio": clips[i][span.start:span.end]},
                {"type": "text", "text": prompt}]}] for i, span in batch]
            features = self.processor.apply_chat_template(
                conversations, add_generation_prompt=True, tokenize=True, return_dict=True,
                return_tensors="pt",
                processor_kwargs={"padding": True, "sampling_rate": SAMPLE_RATE})
            features["input_features_mask"] = gemma3n_frame_mask(
                self.processor.feature_extractor, [span.end - span.start for _, span in batch],
                features["input_features_mask"])
            inputs = self.to_model(features)
            ids = self.model.generate(**inputs, do_sample=False,
                                      max_new_tokens=options.max_new_tokens or 256,
                                      num_beams=max(1, options.beam_size), **options.extra)
            new = ids[:, inputs["input_ids"].shape[1]:]
            for (i, _span), text in zip(batch, self.processor.batch_decode(
                    new, skip_special_tokens=True), strict=True):
                parts[i].append(text.strip())
        return [" ".join(p for p in texts if p) for texts in parts]


GEMMA3N_PAD_MULTIPLE = 128  # Gemma3nAudioFeatureExtractor pads each batch to this many samples


def gemma3n_frame_mask(extractor: Any, lengths: list[int], mask: Any) -> Any:
    """Gemma 3n's feature mask with only each clip's own frames valid.

    The extractor (transformers 5.23) marks a frame valid when its first sample is
    audio, so in a padded batch the last frames of a shorter clip — mostly padding —
    count as audio: a 0.4 s clip batched with a 7 s one got 40 frames instead of its
    37, and the encoder's output for it changed by up to 0.49 (values up to 2.9) on
    the tiny test model. A clip's transcript must not depend on its batch mates, so a
    frame is kept only if it lies within what the clip alone would give: its samples
    padded to the extractor's multiple, framed in ``frame_length + 1`` samples (the
    pre-emphasis takes one more) every ``hop_length``.
    """
    mask = mask.clone()
    span = extractor.frame_length + 1
    for row, samples in enumerate(lengths):
        padded = -(-samples // GEMMA3N_PAD_MULTIPLE) * GEMMA3N_PAD_MULTIPLE
        frames = max(0, (padded - span) // extractor.hop_length + 1)
        mask[row, frames:] = False
    return mask


def encode_audio_per_clip(model: Any) -> None:
    """Make a Gemma 3n model run its audio encoder clip by clip, each cropped to its own
    frames, then pad the encodings as the model pads a batch's.

    Even with each clip's frames masked right (:func:`gemma3n_frame_mask`), the encoder
    (transformers 5.23) gave a clip other values when the other rows' masks changed: rows
    are not independent. The encoder is a small part of the model; the decoder, where
    the time goes, stays batched.
    """
    import torch

    encode = model.get_audio_features

    def per_clip(input_features: Any, input_features_mask: Any, **kwargs: Any) -> Any:
        padding = input_features_mask  # what the model passes: True where a frame is padding
        if input_features.shape[0] == 1:
            return encode(input_features, padding, **kwargs)
        lengths = (~padding).sum(dim=1).tolist()
        outs = [encode(input_features[i:i + 1, :n], padding[i:i + 1, :n], **kwargs)
                for i, n in enumerate(lengths)]
        width = max(o.pooler_output.shape[1] for o in outs)
        merged = outs[0]
        merged.pooler_output = torch.cat([torch.nn.functional.pad(
            o.pooler_output, (0, 0, 0, width - o.pooler_output.shape[1])) for o in outs])
        merged.audio_mel_mask = torch.cat([torch.nn.functional.pad(
            o.audio_mel_mask, (0, width - o.audio_mel_mask.shape[1]), value=True)
            for o in outs])
        merged.last_hidden_state = None
        return merged

    model.get_audio_features = per_clip


