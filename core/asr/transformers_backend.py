"""ASR through transformers: Whisper, Wav2Vec2 CTC, SeamlessM4T and Gemma 3n.

One runner per family turns a padded batch into texts; the backend loads it
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
from core.asr.timing import NONE, SEGMENT, WORD, Segment, Word, clamp, group_words
from core.asr.vad import windows
from core.asr.windows import Span, split
from core.audio import SAMPLE_RATE
from core.devices import is_cuda
from core.hub import ModelUnavailableError, friendly_hub_errors
from core.languages import english_name, iso639_3

import importlib.util
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from core.asr.spec import AsrModelSpec

WHISPER_WINDOW = 30 * SAMPLE_RATE


def _batches(items: list[Any], size: int) -> list[list[Any]]:
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


class _Runner:
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


class _WhisperRunner(_Runner):
    """Whisper of any size, or a fine-tuned checkpoint folder.

    Language and task go through ``generate(language=, task=)``; the
    ``forced_decoder_ids`` that older fine-tunes saved in their configs are
    dropped (as the French fine-tuning notes do before training), since
    transformers would otherwise prefer them when no language is given.
    Clips over 30 s use Whisper's sequential long-form decoding, which
    follows the predicted timestamps; models without timestamp tokens fall
    back to plain 30 s windows.
    """

    def load(self, where: str) -> tuple[Any, Any]:
        from transformers import AutoProcessor, WhisperForConditionalGeneration

        processor = AutoProcessor.from_pretrained(where, **self.common)
        model = self.from_pretrained(WhisperForConditionalGeneration, where)
        model.config.forced_decoder_ids = None
        model.generation_config.forced_decoder_ids = None
        complete_generation_config(model, processor.tokenizer)
        return processor, model

    @property
    def multilingual(self) -> bool:
        return bool(getattr(self.model.generation_config, "is_multilingual", True))

    @property
    def long_form(self) -> bool:
        return getattr(self.model.generation_config, "no_timestamps_token_id", None) is not None

    def generate_kwargs(self, options: DecodeOptions) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"num_beams": max(1, options.beam_size), "do_sample": False}
        if self.multilingual:  # English-only models refuse language/task
            kwargs.update(language=options.language, task=options.task)
        if options.max_new_tokens:
            # generate() refuses more than the decoder's positions minus the prompt.
            limit = self.model.config.max_target_positions // 2
            kwargs["max_new_tokens"] = min(options.max_new_tokens, limit)
        kwargs.update(options.extra)
        return kwargs

    def generate(self, clips: list[np.ndarray], options: DecodeOptions, long: bool) -> list[str]:
        extractor = self.processor.feature_extractor
        # On a GPU the log-mel spectrograms are computed there and stay there
        # (:func:`log_mel_on_device`): on the CPU they cost a fifth of a batch's time.
        if is_cuda(self.device) and not long and _plain_whisper_extractor(extractor):
            features = log_mel_on_device(extractor, clips, self.device)
        else:
            padding = {"padding": "longest", "truncation": False} if long else {}
            if is_cuda(self.device):
                padding["device"] = self.device
            features = extractor(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt",
                                 return_attention_mask=True, **padding)
        inputs = self.to_model(features)
        kwargs = self.generate_kwargs(options)
        if long:
            kwargs["return_timestamps"] = True
        ids = self.model.generate(inputs["input_features"], attention_mask=inputs["attention_mask"],
                                  **kwargs)
        return self.processor.batch_decode(ids, skip_special_tokens=True)

    def segments(self, clip: np.ndarray, options: DecodeOptions) -> Iterator[Segment]:
        """Segments from Whisper's timestamp tokens, window by window (a long clip cut at
        pauses by the VAD, or every 30 s without it), each yielded once decoded."""
        extractor = self.processor.feature_extractor
        for window in windows(clip, WHISPER_WINDOW, options.vad_filter):
            inputs = self.to_model(extractor(
                [clip[window.start:window.end]], sampling_rate=SAMPLE_RATE,
                return_tensors="pt", return_attention_mask=True))
            out = self.model.generate(inputs["input_features"],
                                      attention_mask=inputs["attention_mask"],
                                      return_timestamps=True, return_segments=True,
                                      **self.generate_kwargs(options))
            offset, end = window.start / SAMPLE_RATE, window.end / SAMPLE_RATE
            for found in out["segments"][0]:
                text = self.processor.decode(found["tokens"], skip_special_tokens=True)
                yield clamp(Segment(offset + float(found["start"]), offset + float(found["end"]),
                                    text.strip()), end, floor=offset)

    def detect_languages(self, clips: list[np.ndarray]) -> list[str | None]:
        """Each clip's language from its first 30 s (one batched encoder pass)."""
        if not self.multilingual:
            return ["en"] * len(clips)
        extractor = self.processor.feature_extractor
        features = self.to_model(extractor([clip[:WHISPER_WINDOW] for clip in clips],
                                           sampling_rate=SAMPLE_RATE, return_tensors="pt"))
        ids = self.model.detect_language(features["input_features"],
                                         generation_config=self.model.generation_config)
        names = {index: token[2:-2] for token, index in
                 self.model.generation_config.lang_to_id.items()}
        return [names.get(int(i)) for i in ids.reshape(-1).tolist()]

    def transcribe(self, clips: list[np.ndarray], options: DecodeOptions) -> list[str]:
        texts = [""] * len(clips)
        short = [i for i, clip in enumerate(clips) if clip.size <= WHISPER_WINDOW]
        long = [i for i, clip in enumerate(clips) if clip.size > WHISPER_WINDOW]
        if short:
            for i, text in zip(short, self.generate([clips[i] for i in short], options, False),
                               strict=True):
                texts[i] = text
        if long and self.long_form:
            for i, text in zip(long, self.generate([clips[i] for i in long], options, True),
                               strict=True):
                texts[i] = text
        elif long:
            for i in long:
                windows = [clips[i][s.start:s.end] for s in split(clips[i].size, WHISPER_WINDOW)]
                parts = [t for batch in _batches(windows, options.batch_size)
                         for t in self.generate(batch, options, False)]
                texts[i] = " ".join(p.strip() for p in parts)
        return texts


def _plain_whisper_extractor(extractor: Any) -> bool:
    """Whether :func:`log_mel_on_device` computes exactly what ``extractor`` would."""
    return (type(extractor).__name__ == "WhisperFeatureExtractor"
            and not getattr(extractor, "do_normalize", False)
            and not getattr(extractor, "dither", 0.0)
            and getattr(extractor, "padding_value", 0.0) == 0.0)


def log_mel_on_device(extractor: Any, clips: list[np.ndarray], device: str) -> dict[str, Any]:
    """Whisper's log-mel features of clips of at most one window, computed on ``device``.

    The same arithmetic as ``WhisperFeatureExtractor``'s torch path (zero
    padding to the window, STFT, mel filters, log10, an 8-decade floor under
    each clip's peak, scaling), and the same frame mask, but the features stay
    on the device: the extractor's own ``device=`` path builds the padded batch
    in numpy and copies the features back to host memory, only for the model
    to copy them to the GPU again.
    """
    import torch

    n = extractor.n_samples
    on_gpu = is_cuda(device)
    host = torch.zeros(len(clips), n, dtype=torch.float32, pin_memory=on_gpu)
    for row, clip in zip(host, clips, strict=True):
        row[:min(clip.size, n)] = torch.from_numpy(clip[:n])
    lengths = torch.tensor([min(clip.size, n) for clip in clips])
    wave = host.to(device, non_blocking=on_gpu)
    window = torch.hann_window(extractor.n_fft, device=device)
    stft = torch.stft(wave, extractor.n_fft, extractor.hop_length, window=window,
                      return_complex=True)
    power = (stft[..., :-1].abs() ** 2).contiguous()
    mel = torch.from_numpy(extractor.mel_filters).to(device, torch.float32).T @ power
    log_spec = torch.clamp(mel, min=1e-10).log10()
    peak = log_spec.amax(dim=(1, 2), keepdim=True)
    log_spec = (torch.maximum(log_spec, peak - 8.0) + 4.0) / 4.0
    frames = torch.arange(log_spec.shape[-1]) * extractor.hop_length
    mask = (frames[None, :] < lengths[:, None]).to(torch.int32)
    return {"input_features": log_spec, "attention_mask": mask.to(device)}


def complete_generation_config(model: Any, tokenizer: Any) -> None:
    """Fill in what ``generate(language=, task=)`` needs, from the tokenizer.

    Checkpoints saved by old transformers versions (many fine-tunes) lack
    ``lang_to_id``/``task_to_id``/``no_timestamps_token_id``; without them
    generate() refuses a language. The special tokens are in every Whisper
    tokenizer, so they are rebuilt from it.
    """
    config = model.generation_config
    vocab = tokenizer.get_vocab()
    if getattr(config, "lang_to_id", None) is None:
        start, end = vocab.get("<|startoftranscript|>"), vocab.get("<|translate|>")
        if start is not None and end is not None:
            config.lang_to_id = {token: index for token, index in vocab.items()
                                 if start < index < end and token.startswith("<|")}
    if getattr(config, "task_to_id", None) is None and "<|transcribe|>" in vocab:
        config.task_to_id = {"transcribe": vocab["<|transcribe|>"],
                             "translate": vocab["<|translate|>"]}
    if getattr(config, "no_timestamps_token_id", None) is None and "<|notimestamps|>" in vocab:
        config.no_timestamps_token_id = vocab["<|notimestamps|>"]
    if getattr(config, "is_multilingual", None) is None:
        config.is_multilingual = model.config.vocab_size >= 51865  # Whisper's own rule
    if getattr(config, "decoder_start_token_id", None) is None:
        config.decoder_start_token_id = model.config.decoder_start_token_id


class _CtcRunner(_Runner):
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
        for batch in _batches(pieces, options.batch_size):
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


class _SeamlessRunner(_Runner):
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
        for batch in _batches(pieces, options.batch_size):
            audio = [clips[i][span.start:span.end] for i, span in batch]
            inputs = self.to_model(self.processor(audio=audio, sampling_rate=SAMPLE_RATE,
                                                  return_tensors="pt", padding=True))
            ids = self.model.generate(**inputs, tgt_lang=tgt_lang, **kwargs)
            for (i, _span), text in zip(batch, self.processor.batch_decode(
                    ids, skip_special_tokens=True), strict=True):
                parts[i].append(text.strip())
        return [" ".join(p for p in texts if p) for texts in parts]


class _Gemma3nRunner(_Runner):
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
        for batch in _batches(pieces, options.batch_size):
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


# What each family can place in time: Whisper's timestamp tokens give segments, a CTC
# model's frames give words; Seamless and Gemma 3n give no timestamps.
TIMESTAMPS: dict[str, str] = {"whisper": SEGMENT, "wav2vec2": WORD}

RUNNERS: dict[str, type[_Runner]] = {
    "whisper": _WhisperRunner,
    "wav2vec2": _CtcRunner,
    "seamless": _SeamlessRunner,
    "gemma3n": _Gemma3nRunner,
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
    runner: _Runner | None = None

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
