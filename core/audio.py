"""Audio decoding for ASR: any common file or upload to float32 mono at 16 kHz.

PyAV bundles FFmpeg, so wav, flac, mp3, ogg, m4a and webm decode with no
system codec. Every failure (missing, empty, corrupt, not audio, silent
container) surfaces as one :class:`AudioError` whose message names the
source: an ASR run must never score an empty array as if it were speech.
Uploads arrive as bytes or file-like objects and are never used as paths.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

SAMPLE_RATE = 16_000
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".mp4", ".aac", ".webm")

AudioSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO


class AudioError(ValueError):
    """Audio could not be read; the message is meant for the user as is."""


@dataclass(frozen=True)
class AudioInfo:
    """What the decoder found in the source, before resampling."""

    duration: float
    sample_rate: int
    channels: int
    codec: str
    container: str


@dataclass(frozen=True)
class _Opened:
    label: str
    handle: str | io.BytesIO


def _open_source(source: AudioSource, name: str | None) -> _Opened:
    """A path checked for existence and size, or the bytes of an upload in memory."""
    if isinstance(source, str | os.PathLike):
        path = Path(source).expanduser()
        label = name or str(path)
        if not path.exists():
            raise AudioError(f"{label}: no such audio file")
        if not path.is_file():
            raise AudioError(f"{label}: not a file")
        if path.stat().st_size == 0:
            raise AudioError(f"{label}: the file is empty (0 bytes)")
        return _Opened(label, str(path))
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        label = name or "uploaded audio"
    else:
        label = name or str(getattr(source, "name", "") or "uploaded audio")
        if hasattr(source, "getvalue"):
            data = source.getvalue()
        else:
            if source.seekable():
                source.seek(0)
            data = source.read()
    if not data:
        raise AudioError(f"{label}: the upload is empty (0 bytes)")
    return _Opened(label, io.BytesIO(data))


def _frames(container: av.container.InputContainer) -> Iterator[av.AudioFrame]:
    """Decoded frames, skipping the odd undecodable packet as FFmpeg's CLI does."""
    packets = container.demux(audio=0)
    for packet in packets:
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            continue


def _decode(opened: _Opened, sampling_rate: int | None) -> tuple[np.ndarray, AudioInfo]:
    """Decode every channel, resample, then average channels (an explicit mean:
    FFmpeg's own stereo-to-mono matrix scales each side by 0.707, not 0.5)."""
    label = opened.label
    try:
        container = av.open(opened.handle, mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise AudioError(f"{label}: not a readable audio file (corrupt, or not audio)") from exc
    with container:
        if not container.streams.audio:
            raise AudioError(f"{label}: the file has no audio stream (is it an audio file?)")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or 0
        channels = stream.codec_context.channels or 0
        resampler = None
        chunks: list[np.ndarray] = []
        decoded = 0
        try:
            for frame in _frames(container):
                decoded += frame.samples
                rate = frame.sample_rate or rate
                channels = len(frame.layout.channels) or channels
                if sampling_rate is None:
                    continue
                if resampler is None:
                    resampler = av.AudioResampler(
                        format="fltp", layout=frame.layout.name, rate=sampling_rate)
                frame.pts = None  # timestamps of some webm/ogg uploads are not monotonic
                chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
            if resampler is not None:
                chunks.extend(out.to_ndarray() for out in resampler.resample(None))
        except (av.error.FFmpegError, ValueError) as exc:
            raise AudioError(f"{label}: the audio stream is corrupt ({exc})") from exc
        codec, container_name = stream.codec_context.name, container.format.name
    if decoded == 0 or not rate:
        raise AudioError(f"{label}: the file contains no audio samples")
    info = AudioInfo(decoded / rate, int(rate), int(channels), codec, container_name)
    if sampling_rate is None:
        return np.zeros(0, dtype=np.float32), info
    audio = np.concatenate(chunks, axis=1).mean(axis=0) if chunks else np.zeros(0, np.float32)
    if audio.size == 0:
        raise AudioError(f"{label}: the file contains no audio samples")
    return np.ascontiguousarray(audio, dtype=np.float32), info


def load_audio_with_info(
    source: AudioSource, sampling_rate: int = SAMPLE_RATE, *, name: str | None = None
) -> tuple[np.ndarray, AudioInfo]:
    """The mono float32 samples in [-1, 1] at ``sampling_rate``, and the source's info."""
    return _decode(_open_source(source, name), sampling_rate)


def load_audio(
    source: AudioSource, sampling_rate: int = SAMPLE_RATE, *, name: str | None = None
) -> np.ndarray:
    """Decode a path, bytes or file-like object to float32 mono at ``sampling_rate``.

    ``name`` labels error messages (e.g. the upload's file name). Raises
    :class:`AudioError`; never returns an empty array.
    """
    return load_audio_with_info(source, sampling_rate, name=name)[0]


def probe(source: AudioSource, *, name: str | None = None) -> AudioInfo:
    """Decode without resampling to measure the source.

    Headers are not trusted: browser webm recordings carry no duration and
    VBR mp3 headers estimate it, so the samples are counted instead.
    """
    return _decode(_open_source(source, name), None)[1]


def duration(source: AudioSource, *, name: str | None = None) -> float:
    """The length of the audio in seconds (counted from the decoded samples)."""
    return probe(source, name=name).duration


def resample(audio: np.ndarray, orig_rate: int, sampling_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample an in-memory signal (mono, or channels-first) to float32 mono.

    For datasets that hand over arrays (Hugging Face) rather than files; the
    same FFmpeg resampler as :func:`load_audio` keeps both paths identical.
    """
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim == 2:
        array = array.mean(axis=0)
    if array.ndim != 1 or array.size == 0:
        raise AudioError("the audio array is empty or not mono/channels-first")
    if orig_rate <= 0:
        raise AudioError(f"invalid sampling rate {orig_rate}")
    if orig_rate == sampling_rate:
        return np.ascontiguousarray(array)
    frame = av.AudioFrame.from_ndarray(array[np.newaxis, :], format="fltp", layout="mono")
    frame.sample_rate = orig_rate
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=sampling_rate)
    chunks = [out.to_ndarray() for out in (*resampler.resample(frame), *resampler.resample(None))]
    return np.ascontiguousarray(np.concatenate(chunks, axis=1)[0], dtype=np.float32)


def is_audio_file(path: str | os.PathLike[str]) -> bool:
    """True for the extensions the dataset loaders treat as audio."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS
