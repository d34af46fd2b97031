"""Clip durations from file headers: WAV and compressed containers, the on-disk cache, and
files that cannot be read (named, never counted as 0 s)."""

from __future__ import annotations

from core import durations
from core.audio import duration, load_audio
from core.datasets import Sample
from core.durations import fill_durations, header_seconds

import os
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from tests.test_audio import _encode

pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                reason="espeak-ng and sox are installed by `make setup-dev`")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real English demo clip (espeak-ng WAV)."""
    from core.demo_data import make_demo_dataset

    manifest = make_demo_dataset(tmp_path_factory.mktemp("durations"), langs=("en",), count=1)
    return next(manifest.parent.rglob("*.wav"))


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own duration cache (``core.paths`` reads the variable at each call)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ERT_CACHE_DIR", str(folder))
    return folder


def _sample(path: Path, seconds: float | None = None) -> Sample:
    return Sample(path.stem, path, "text", seconds)


def _streamed_webm(path: Path, signal: np.ndarray) -> Path:
    """Opus in webm written to a pipe, as a browser records it: no duration in the header."""
    class Pipe:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, chunk: bytes) -> int:
            self.data += bytes(chunk)
            return len(chunk)

        def seekable(self) -> bool:
            return False

    pipe = Pipe()
    with av.open(pipe, "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=48_000, layout="mono")
        frame = av.AudioFrame.from_ndarray(signal[np.newaxis, :], format="fltp", layout="mono")
        frame.sample_rate = 16_000
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono",
                                      rate=48_000)
        for chunk in (*resampler.resample(frame), *resampler.resample(None), None):
            for packet in stream.encode(chunk):
                out.mux(packet)
    path.write_bytes(bytes(pipe.data))
    return path


def test_a_wav_duration_is_read_from_its_header_and_matches_the_decoded_length(clip: Path):
    sample = _sample(clip)
    report = fill_durations([sample])
    assert sample.duration == pytest.approx(duration(clip), abs=1e-3)
    assert (report.given, report.read, report.unreadable) == (0, 1, [])
    assert report.describe() == "read from audio headers for 1 of 1 samples"


@pytest.mark.parametrize(("suffix", "container", "codec", "rate"), [
    (".flac", "flac", "flac", 16_000),
    (".mp3", "mp3", "libmp3lame", 16_000),
    (".opus", "ogg", "libopus", 48_000),
    (".m4a", "ipod", "aac", 16_000),
])
def test_compressed_containers_durations_are_read_from_their_headers(
        clip: Path, tmp_path: Path, suffix: str, container: str, codec: str, rate: int):
    path = _encode(tmp_path / f"clip{suffix}", container, codec, rate, load_audio(clip))
    seconds = header_seconds(path)
    assert seconds == pytest.approx(duration(path), abs=0.1)  # codec padding only
    assert seconds == pytest.approx(duration(clip), abs=0.1)


def test_ogg_vorbis_from_sox_is_read_through_libsndfile(clip: Path, tmp_path: Path):
    path = tmp_path / "clip.ogg"
    subprocess.run(["sox", str(clip), str(path)], check=True)
    assert durations._soundfile_seconds(path) == pytest.approx(duration(clip), abs=0.05)
    assert header_seconds(path) == pytest.approx(duration(clip), abs=0.05)


def test_a_webm_without_a_duration_in_its_header_is_measured_from_its_packets(
        clip: Path, tmp_path: Path):
    path = _streamed_webm(tmp_path / "recorded.webm", load_audio(clip))
    with av.open(str(path)) as opened:  # what makes it the packet case
        assert opened.streams.audio[0].duration is None and opened.duration is None
    assert header_seconds(path) == pytest.approx(duration(clip), abs=0.05)


def test_a_second_read_comes_from_the_cache_and_a_changed_file_is_read_again(
        clip: Path, tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / clip.name
    shutil.copy(clip, path)
    first = fill_durations([_sample(path)])
    assert first.read == 1 and (own_cache / "durations" / "durations.sqlite").is_file()
    reads: list[Path] = []
    real = durations.header_seconds

    def counted(source: Path) -> float | None:
        reads.append(Path(source))
        return real(source)

    monkeypatch.setattr(durations, "header_seconds", counted)
    again = _sample(path)
    assert fill_durations([again]).read == 1 and reads == []  # from the cache
    assert again.duration == pytest.approx(duration(clip), abs=1e-3)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    fill_durations([_sample(path)])
    assert reads == [path]  # a new mtime: read again


def test_a_corrupt_file_is_named_and_never_counted_as_zero(clip: Path, tmp_path: Path):
    from core.evaluation.run_plan import longest_clip, total_seconds

    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage that is not audio")
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    samples = [_sample(clip), _sample(corrupt), _sample(empty)]
    report = fill_durations(samples)
    assert [s.duration for s in samples[1:]] == [None, None]
    assert report.unreadable == ["corrupt.wav", "empty.mp3"] and report.read == 1
    assert report.describe() == "read from audio headers for 1 of 3 samples (2 unknown)"
    assert report.warnings() == ["2 files whose duration could not be read: corrupt.wav, "
                                 "empty.mp3 (not counted in the time estimate)"]
    assert total_seconds(samples) == pytest.approx(duration(clip), abs=1e-3)
    assert longest_clip(samples) is None  # the memory estimate then keeps its own default


def test_durations_the_dataset_gives_are_kept_and_nothing_is_read(
        clip: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(durations, "header_seconds", lambda source: pytest.fail("read"))
    sample = _sample(clip, 12.5)
    report = fill_durations([sample])
    assert sample.duration == 12.5 and report.describe() == "given by the dataset"
    assert report.warnings() == []


def test_an_encoded_clip_held_in_memory_is_read_from_its_bytes(clip: Path):
    sample = Sample("upload", None, "text", audio_bytes=clip.read_bytes())
    assert fill_durations([sample]).read == 1
    assert sample.duration == pytest.approx(duration(clip), abs=1e-3)
