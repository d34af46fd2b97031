"""Whisper through transformers: its runner, log-mel features on the GPU, and the
generation config that old fine-tunes lack.

Kept apart from :mod:`core.asr.transformers_runners` (whose :class:`Runner` it extends)
because Whisper needs the most: long-form decoding, timestamped segments, language
detection and the GPU feature path. torch and transformers are imported inside the
functions, so importing this module loads neither.
"""

from __future__ import annotations

from core.asr.base import DecodeOptions
from core.asr.timing import Segment, clamp
from core.asr.transformers_runners import Runner, batches
from core.asr.vad import windows
from core.asr.windows import split
from core.audio import SAMPLE_RATE
from core.devices import is_cuda

from collections.abc import Iterator
from typing import Any

import numpy as np

WHISPER_WINDOW = 30 * SAMPLE_RATE


class WhisperRunner(Runner):
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
                parts = [t for batch in batches(windows, options.batch_size)
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


