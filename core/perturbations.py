"""The signal processing behind the robustness conditions: audio in, audio out.

Each function here takes float32 mono audio at ``rate`` and the plain arguments it needs
(an SNR, a bit rate, a factor, a seeded generator, the talkers or noise files to mix), and
knows nothing of the registry: :mod:`core.conditions` declares the conditions, draws what
they need and calls these. Everything random comes from the generator it is handed, so the
same generator gives the same audio.

The processing is FFmpeg's through PyAV (noise sources, filters, resampling, tempo, the
codecs' real encoders) and pyroomacoustics' (room impulse responses); what is written here
is measuring the speech level and mixing at an SNR.
"""

from __future__ import annotations

from core import paths
from core.audio import SAMPLE_RATE, AudioError, load_audio

import functools
import hashlib
import io
import json
import math
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FRAME_S = 0.02  # frames the speech level is measured on, and packets packet loss drops
ACTIVE_RANGE_DB = 40.0  # frames this far below the loudest still count as speech
SILENCE_DBFS = -70.0  # frames below this never do
SILENT_CLIP_DBFS = -30.0  # the speech level assumed for a clip with no frame above silence
ROOMS = 3  # room layouts reverberation picks from (their responses are cached on disk)
TELEPHONE_BAND = (300, 3400)  # Hz
TELEPHONE_RATE = 8000
# The container each codec's round trip writes, and the rate it runs at (None: the clip's).
CODEC_FORMATS: dict[str, tuple[str, int | None]] = {
    "libopencore_amrnb": ("amr", 8000), "libopus": ("ogg", None), "libmp3lame": ("mp3", None),
}


# --- level and mixing -----------------------------------------------------------------------


def _frame_powers(audio: np.ndarray, rate: int) -> np.ndarray:
    size = max(1, int(rate * FRAME_S))
    frames = audio[:audio.size // size * size].astype(np.float64).reshape(-1, size)
    if frames.size == 0:
        frames = audio.astype(np.float64).reshape(1, -1)
    return (frames ** 2).mean(axis=1)


def speech_power(audio: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """The clip's speech level as a power: the mean power of its 20 ms frames within
    :data:`ACTIVE_RANGE_DB` of the loudest and above :data:`SILENCE_DBFS` (pauses and
    silence do not lower it, as they would a plain RMS)."""
    powers = _frame_powers(audio, rate)
    floor = max(powers.max() * 10 ** (-ACTIVE_RANGE_DB / 10), 10 ** (SILENCE_DBFS / 10))
    active = powers[powers >= floor]
    return float(active.mean()) if active.size else 10 ** (SILENT_CLIP_DBFS / 10)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float,
               rate: int = SAMPLE_RATE) -> np.ndarray:
    """``speech`` plus ``noise`` (as long, any level) scaled so that the speech level over
    the noise's power is ``snr_db``; both scaled down together if the sum would clip (the
    SNR stays)."""
    noise = np.asarray(noise, np.float64)
    power = float((noise ** 2).mean())
    if power <= 0:
        raise AudioError("the noise is silent")
    gain = math.sqrt(speech_power(speech, rate) / (power * 10 ** (snr_db / 10)))
    mixed = speech.astype(np.float64) + gain * noise
    return _under_full_scale(mixed)


def _under_full_scale(audio: np.ndarray) -> np.ndarray:
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return audio * (0.99 / peak) if peak > 0.99 else audio


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    """Cut or pad (with silence) to ``length`` samples: a codec's frames overshoot."""
    if audio.size >= length:
        return audio[:length]
    return np.concatenate([audio, np.zeros(length - audio.size, audio.dtype)])


def _loop(noise: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """``length`` samples of ``noise`` from a random start, wrapping around."""
    start = int(rng.integers(noise.size))
    return np.resize(np.roll(noise, -start), length)


# --- FFmpeg: filters, noise sources, codecs -------------------------------------------------


def _pull(graph: av.filter.Graph) -> np.ndarray:
    chunks = []
    while True:
        try:
            chunks.append(graph.pull().to_ndarray())
        except (av.error.EOFError, av.error.BlockingIOError, EOFError):
            break
    return np.concatenate(chunks, axis=1)[0] if chunks else np.zeros(0, np.float32)


def _filter(audio: np.ndarray, rate: int, chain: Sequence[tuple[str, str]]) -> np.ndarray:
    """``audio`` through a chain of FFmpeg audio filters (name, arguments)."""
    graph = av.filter.Graph()
    last = graph.add_abuffer(sample_rate=rate, format="flt", layout="mono",
                             time_base=Fraction(1, rate))
    for name, args in chain:
        node = graph.add(name, args)
        last.link_to(node)
        last = node
    sink = graph.add("abuffersink")
    last.link_to(sink)
    graph.configure()
    frame = av.AudioFrame.from_ndarray(audio[np.newaxis, :].astype(np.float32), format="flt",
                                       layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
    graph.push(frame)
    graph.push(None)
    return _pull(graph)


def _noise(color: str, length: int, seed: int, rate: int) -> np.ndarray:
    """``length`` samples of FFmpeg's ``anoisesrc`` noise of ``color``, seeded."""
    graph = av.filter.Graph()
    source = graph.add("anoisesrc", f"color={color}:seed={seed}:sample_rate={rate}:"
                                    f"amplitude=0.5:nb_samples=4096:duration={length / rate}")
    sink = graph.add("abuffersink")
    source.link_to(sink)
    graph.configure()
    return _fit(_pull(graph).astype(np.float64), length)


def encode_audio(audio: np.ndarray, rate: int, codec: str, container: str,
            bit_rate: int | None = None) -> bytes:
    """``audio`` encoded by FFmpeg's ``codec`` in a ``container``, in memory; bit-exact
    (no random stream serial, no encoder version tag), so the same audio gives the same
    bytes."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container,
                 container_options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        if bit_rate:
            stream.bit_rate = bit_rate
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        frame = av.AudioFrame.from_ndarray(pcm[np.newaxis, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def wav_bytes(audio: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM WAV bytes of float audio (``st.audio`` plays them)."""
    return encode_audio(audio, rate, "pcm_s16le", "wav")


def codec_round_trip(audio: np.ndarray, rate: int, codec: str, container: str,
                     codec_rate: int, bit_rate: int | None = None) -> np.ndarray:
    """``audio`` at ``rate`` resampled to ``codec_rate``, encoded, decoded and resampled
    back (FFmpeg's resampler and codecs), as long as it was."""
    from core.audio import resample

    narrow = resample(audio, rate, codec_rate) if codec_rate != rate else audio
    data = encode_audio(narrow, codec_rate, codec, container, bit_rate)
    return _fit(load_audio(data, rate, name=f"{codec} round trip"), audio.size)


# --- the perturbations ----------------------------------------------------------------------


def telephone(audio: np.ndarray, rate: int) -> np.ndarray:
    """A telephone line: the 300–3400 Hz band, then G.711 µ-law at 8 kHz and back."""
    low, high = TELEPHONE_BAND
    band = _filter(audio, rate, [("highpass", f"f={low}"), ("highpass", f"f={low}"),
                                 ("lowpass", f"f={high}"), ("lowpass", f"f={high}")])
    return codec_round_trip(_fit(band, audio.size), rate, "pcm_mulaw", "wav", TELEPHONE_RATE)


def codec(audio: np.ndarray, rate: int, encoder: str, kbps: float) -> np.ndarray:
    """A round trip through ``encoder`` (one of :data:`CODEC_FORMATS`) at ``kbps``."""
    container, codec_rate = CODEC_FORMATS[encoder]
    bit_rate = int(round(kbps * 1000))
    return codec_round_trip(audio, rate, encoder, container, codec_rate or rate, bit_rate)


def colored_noise(audio: np.ndarray, rate: int, rng: np.random.Generator, color: str,
                  snr_db: float) -> np.ndarray:
    """FFmpeg's ``color`` noise (``white``, ``pink``), seeded from ``rng``, at the SNR."""
    noise = _noise(color, audio.size, int(rng.integers(2 ** 31 - 1)), rate)
    return mix_at_snr(audio, noise, snr_db, rate)


def babble(audio: np.ndarray, rate: int, rng: np.random.Generator,
           talkers: Sequence[np.ndarray], snr_db: float) -> np.ndarray:
    """A crowd of ``talkers`` (other clips, each looped from a random start) at the SNR."""
    # Each talker at the same speech level, then the crowd at the SNR.
    crowd = sum((_loop(t, audio.size, rng) / math.sqrt(speech_power(t, rate))
                 for t in talkers), np.zeros(audio.size))
    return mix_at_snr(audio, crowd, snr_db, rate)


@functools.lru_cache(maxsize=8)
def _noise_recording(path: str, mtime_ns: int, size: int, rate: int) -> np.ndarray:
    return load_audio(path, rate)


def recorded_noise(audio: np.ndarray, rate: int, rng: np.random.Generator,
                   files: Sequence[Path], snr_db: float) -> np.ndarray:
    """One of ``files`` (drawn with ``rng``, looped from a random start) at the SNR; the
    decoded recordings are kept while the file is unchanged."""
    chosen = files[int(rng.integers(len(files)))]
    stat = chosen.stat()
    noise = _noise_recording(str(chosen), stat.st_mtime_ns, stat.st_size, rate)
    return mix_at_snr(audio, _loop(noise, audio.size, rng), snr_db, rate)


# Shoebox rooms (dimensions, source, microphone; metres) reverberation picks from.
_ROOM_LAYOUTS = (((6.0, 5.0, 3.0), (2.0, 3.1, 1.6), (4.1, 2.2, 1.2)),
                 ((5.0, 4.0, 2.7), (1.2, 1.5, 1.5), (3.6, 2.9, 1.1)),
                 ((8.0, 6.0, 3.2), (2.5, 4.0, 1.7), (5.5, 1.8, 1.3)))


def room_response(rt60: float, layout: int, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The impulse response of room ``layout`` made to reverberate for ``rt60`` s (Sabine),
    by pyroomacoustics' image-source method (deterministic); cached on disk, since a long
    RT60 takes seconds (1.0 s: ~4 s here)."""
    import pyroomacoustics as pra

    dims, source, mic = _ROOM_LAYOUTS[layout]
    ident = json.dumps({"rt60": rt60, "layout": [dims, source, mic], "rate": rate,
                        "pyroomacoustics": pra.__version__})
    path = paths.cache_dir("conditions", "rooms") / (
        hashlib.sha256(ident.encode()).hexdigest()[:24] + ".npy")
    if path.exists():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    absorption, order = pra.inverse_sabine(rt60, list(dims))
    room = pra.ShoeBox(list(dims), fs=rate, materials=pra.Material(absorption),
                       max_order=order)
    room.add_source(list(source))
    room.add_microphone(list(mic))
    room.compute_rir()
    response = np.asarray(room.rir[0][0], np.float64)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.npy")
    np.save(tmp, response)
    os.replace(tmp, path)
    return response


@functools.lru_cache(maxsize=16)
def _room(rt60: float, layout: int, rate: int) -> np.ndarray:
    return room_response(rt60, layout, rate)


def reverb(audio: np.ndarray, rate: int, rng: np.random.Generator, rt60: float) -> np.ndarray:
    """``audio`` in one of :data:`ROOMS` rooms (drawn with ``rng``) reverberating for
    ``rt60`` s."""
    from scipy.signal import fftconvolve

    response = _room(rt60, int(rng.integers(ROOMS)), rate)
    # From the direct sound on: the room adds reverberation, not the few milliseconds the
    # sound takes to reach the microphone (a shift a model may react to on its own).
    response = response[int(np.argmax(np.abs(response))):]
    wet = fftconvolve(audio.astype(np.float64), response)[:audio.size]
    # At the clip's own speech level: the room changes what is heard, not how loud.
    wet *= math.sqrt(speech_power(audio, rate) / max(speech_power(wet, rate), 1e-20))
    return _under_full_scale(wet)


def speed(audio: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """Played ``factor`` times as fast, pitch and all (a tape run fast or slow)."""
    played = int(round(rate * factor))
    return _filter(audio, rate, [("asetrate", str(played)), ("aresample", str(rate))])


def tempo(audio: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """``factor`` times as fast at the same pitch (FFmpeg's ``atempo``)."""
    return _filter(audio, rate, [("atempo", f"{factor:g}")])


def gain(audio: np.ndarray, db: float) -> np.ndarray:
    """``db`` louder (or quieter), clipped at full scale."""
    return np.clip(audio * 10 ** (db / 20), -1.0, 1.0)


def clipping(audio: np.ndarray, percent: float) -> np.ndarray:
    """The loudest ``percent`` of samples clipped, the result back at the clip's peak (an
    input driven that much too hot)."""
    magnitude = np.abs(audio)
    peak = float(magnitude.max()) if audio.size else 0.0
    threshold = float(np.quantile(magnitude, 1 - percent / 100))
    if threshold <= 0:
        return audio
    return np.clip(audio, -threshold, threshold) * (peak / threshold)


def packet_loss(audio: np.ndarray, rate: int, rng: np.random.Generator,
                percent: float) -> np.ndarray:
    """Each 20 ms packet lost with probability ``percent`` / 100: silence, as a receiver
    without concealment plays it."""
    size = max(1, int(rate * FRAME_S))
    lost = rng.random(-(-audio.size // size)) < percent / 100
    mask = np.repeat(~lost, size)[:audio.size]
    return audio * mask
