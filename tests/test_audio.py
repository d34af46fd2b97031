"""Audio decoding: real speech from espeak-ng, every container ERT accepts, every failure."""

from __future__ import annotations

from core.audio import AudioError, duration, load_audio, load_audio_with_info, probe, resample

import io
import shutil
import subprocess
import wave
from pathlib import Path

import av
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                reason="espeak-ng and sox are installed by `make setup-dev`")


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real French utterance at espeak-ng's native 22.05 kHz."""
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "fr", "-w", str(path),
                    "Bonjour, ceci est un test de reconnaissance vocale."], check=True)
    return path


def _encode(path: Path, container: str, codec: str, rate: int, signal: np.ndarray) -> Path:
    """Write a 16 kHz mono float signal with PyAV in the given container and codec."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(signal[np.newaxis, :], format="fltp", layout="mono")
        frame.sample_rate = 16_000
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono",
                                      rate=rate)
        for chunk in (*resampler.resample(frame), *resampler.resample(None), None):
            for packet in stream.encode(chunk):
                out.mux(packet)
    return path


def test_espeak_wav_is_resampled_to_16k_mono_float32(speech: Path) -> None:
    audio, info = load_audio_with_info(speech)
    assert info.sample_rate == 22_050 and info.channels == 1
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) / 16_000 - info.duration) < 0.01
    assert 0.01 < np.abs(audio).max() <= 1.0
    assert duration(speech) == pytest.approx(info.duration)


def test_stereo_44k_is_downmixed_by_averaging_and_resampled(speech: Path, tmp_path: Path) -> None:
    stereo = tmp_path / "stereo.wav"
    subprocess.run(["sox", str(speech), "-r", "44100", "-c", "2", str(stereo)], check=True)
    info = probe(stereo)
    assert (info.sample_rate, info.channels) == (44_100, 2)
    mono, from_stereo = load_audio(speech), load_audio(stereo)
    assert abs(len(from_stereo) - len(mono)) <= 16
    n = min(len(mono), len(from_stereo))
    # Two identical channels average to the original (FFmpeg's own matrix would give 1.41x).
    assert np.abs(from_stereo).max() == pytest.approx(np.abs(mono).max(), rel=0.05)
    assert np.corrcoef(mono[:n], from_stereo[:n])[0, 1] > 0.99


def test_other_sample_rate_is_honoured(speech: Path) -> None:
    audio = load_audio(speech, sampling_rate=8_000)
    assert abs(len(audio) / 8_000 - duration(speech)) < 0.01


@pytest.mark.parametrize(("suffix", "container", "codec", "rate"), [
    (".flac", "flac", "flac", 16_000),
    (".mp3", "mp3", "libmp3lame", 16_000),
    (".ogg", "ogg", "libopus", 48_000),
    (".webm", "webm", "libopus", 48_000),
    (".m4a", "ipod", "aac", 16_000),
])
def test_compressed_formats_round_trip(speech: Path, tmp_path: Path, suffix: str,
                                       container: str, codec: str, rate: int) -> None:
    original = load_audio(speech)
    path = _encode(tmp_path / f"speech{suffix}", container, codec, rate, original)
    decoded = load_audio(path)
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert abs(len(decoded) - len(original)) < 0.15 * 16_000  # codec padding only
    if codec == "flac":
        np.testing.assert_allclose(decoded, original, atol=1e-3)
    else:
        assert np.sqrt(np.mean(decoded**2)) == pytest.approx(
            np.sqrt(np.mean(original**2)), rel=0.3)


def test_ogg_vorbis_from_sox_decodes(speech: Path, tmp_path: Path) -> None:
    path = tmp_path / "speech.ogg"
    subprocess.run(["sox", str(speech), str(path)], check=True)
    assert probe(path).codec == "vorbis"
    assert abs(duration(path) - duration(speech)) < 0.05


def test_bytes_and_file_like_uploads_decode_like_the_path(speech: Path) -> None:
    from_path = load_audio(speech)
    np.testing.assert_array_equal(load_audio(speech.read_bytes()), from_path)
    np.testing.assert_array_equal(load_audio(io.BytesIO(speech.read_bytes())), from_path)
    with speech.open("rb") as handle:
        np.testing.assert_array_equal(load_audio(handle), from_path)


def test_upload_bytes_are_never_used_as_a_path(speech: Path) -> None:
    with pytest.raises(AudioError, match="clip.wav"):
        load_audio(str(speech).encode(), name="clip.wav")


def test_missing_path_raises_audio_error(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such audio file"):
        load_audio(tmp_path / "absent.wav")


def test_empty_file_raises_audio_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(path)
    with pytest.raises(AudioError, match="empty"):
        load_audio(b"", name="upload.wav")


def test_corrupt_file_raises_audio_error(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError, match="noise.mp3"):
        load_audio(path)


def test_truncated_header_raises_audio_error(speech: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.wav"
    path.write_bytes(speech.read_bytes()[:30])
    with pytest.raises(AudioError):
        load_audio(path)


def test_text_file_named_wav_raises_audio_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are meeting notes, not audio\n" * 20)
    with pytest.raises(AudioError, match="notes.wav"):
        load_audio(path)


def test_wav_header_with_zero_samples_raises_audio_error(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16_000)
        handle.writeframes(b"")
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(path)
    with pytest.raises(AudioError, match="no audio samples"):
        duration(path)


def test_audio_error_is_a_value_error() -> None:
    assert issubclass(AudioError, ValueError)


def test_resample_array_matches_length_and_downmixes() -> None:
    tone = np.sin(2 * np.pi * 220 * np.arange(22_050) / 22_050).astype(np.float32) * 0.5
    out = resample(np.stack([tone, tone]), 22_050)
    assert out.dtype == np.float32 and abs(len(out) - 16_000) <= 16
    assert np.abs(out).max() == pytest.approx(0.5, rel=0.05)
    with pytest.raises(AudioError):
        resample(np.zeros(0, np.float32), 16_000)
