"""Clip durations read from file headers, for planning a run whose dataset gives none.

The plan's time estimate and its memory estimate's clip length need every clip's length,
and a manifest may leave ``duration`` out (the field is optional). Counting decoded samples
(:func:`core.audio.duration`) costs about what the run's own reading does, so this reads
headers: libsndfile's for WAV/FLAC/OGG, else FFmpeg's container and stream metadata
through PyAV, else the packets' timestamps, demuxed but never decoded, for containers whose
headers carry no duration (browser webm). A VBR mp3 without a Xing header gets FFmpeg's
bitrate estimate: close enough for a plan. What is read is kept on disk by (absolute path,
mtime_ns, size) in SQLite from the standard library (nothing unpickled), so a second plan
reads no audio. A file whose duration cannot be read is named and left unknown, never
counted as 0 s.
"""

from __future__ import annotations

from core import paths
from core.datasets import Sample

import contextlib
import io
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av

SOUNDFILE_SUFFIXES = (".wav", ".flac", ".ogg", ".oga")  # libsndfile reads these headers
NAMED = 5  # unreadable files a warning names before "and N more"
_SCHEMA = ("CREATE TABLE IF NOT EXISTS durations (path TEXT PRIMARY KEY, "
           "mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL, seconds REAL NOT NULL)")

FileKey = tuple[str, int, int]  # absolute path, mtime_ns, size


@dataclass
class DurationReport:
    """Where a dataset's clip durations came from, for the plan to say."""

    given: int = 0  # by the dataset (the manifest's field, or an in-memory array's length)
    read: int = 0  # from the audio headers, now or by an earlier plan (the cache)
    unreadable: list[str] = field(default_factory=list)  # names of the files left unknown

    @property
    def total(self) -> int:
        return self.given + self.read + len(self.unreadable)

    def describe(self) -> str:
        """E.g. "read from audio headers for 80 of 80 samples", or "given by the dataset"."""
        if not self.read and not self.unreadable:
            return "given by the dataset"
        sources = [f"{how} for {count}" for how, count in (
            ("given by the dataset", self.given), ("read from audio headers", self.read))
            if count]
        if not sources:
            return f"unknown for all {self.total} samples"
        unknown = f" ({len(self.unreadable)} unknown)" if self.unreadable else ""
        return f"{' and '.join(sources)} of {self.total} samples{unknown}"

    def warnings(self) -> list[str]:
        """The plan warning naming the files whose duration could not be read."""
        count = len(self.unreadable)
        if not count:
            return []
        names = ", ".join(self.unreadable[:NAMED])
        more = f" and {count - NAMED} more" if count > NAMED else ""
        files = "file whose duration" if count == 1 else "files whose duration"
        return [f"{count} {files} could not be read: {names}{more} "
                "(not counted in the time estimate)"]


def header_seconds(source: str | os.PathLike[str] | bytes) -> float | None:
    """The audio's length in seconds from its headers (or packet timestamps); None when
    they cannot be read or give no positive length."""
    if not isinstance(source, bytes) and Path(source).suffix.lower() in SOUNDFILE_SUFFIXES:
        seconds = _soundfile_seconds(Path(source))
        if seconds is not None:
            return seconds
    return _container_seconds(source)


def _soundfile_seconds(path: Path) -> float | None:
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError, ValueError, TypeError):  # not a file libsndfile knows
        return None
    return info.frames / info.samplerate if info.samplerate > 0 and info.frames > 0 else None


def _container_seconds(source: str | os.PathLike[str] | bytes) -> float | None:
    """The stream's duration, else the container's, else the last packet's end."""
    handle: str | io.BytesIO = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        with av.open(handle, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            if stream.duration and stream.time_base and stream.duration > 0:
                return float(stream.duration * stream.time_base)
            if container.duration and container.duration > 0:
                return container.duration / av.time_base
            return _packet_seconds(container, stream)
    except (av.error.FFmpegError, OSError, ValueError):
        return None


def _packet_seconds(container: av.container.InputContainer,
                    stream: av.audio.stream.AudioStream) -> float | None:
    """From the first packet's start to the last one's end, demuxed without decoding."""
    first, end = None, None
    for packet in container.demux(stream):
        if packet.pts is None:  # the demuxer's final flush packet
            continue
        first = packet.pts if first is None else min(first, packet.pts)
        stop = packet.pts + (packet.duration or 0)
        end = stop if end is None else max(end, stop)
    if first is None or end is None or stream.time_base is None or end <= first:
        return None
    return float((end - first) * stream.time_base)


@contextlib.contextmanager
def _cache() -> Iterator[sqlite3.Connection | None]:
    """The on-disk cache of read durations; None when it cannot be opened (read-only
    cache folder, locked file): durations are then read without it."""
    try:
        db = sqlite3.connect(paths.cache_dir("durations") / "durations.sqlite", timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(_SCHEMA)
    except (OSError, sqlite3.Error):
        yield None
        return
    try:
        yield db
    finally:
        db.close()


def _file_key(path: Path) -> FileKey | None:
    try:
        stat = path.stat()
        return str(path.resolve()), stat.st_mtime_ns, stat.st_size
    except OSError:
        return None


def file_seconds(files: list[Path]) -> dict[Path, float | None]:
    """Each file's length in seconds (None: unreadable), from the cache where the file is
    unchanged (same path, mtime_ns and size), else from its headers, then cached."""
    out: dict[Path, float | None] = {}
    with _cache() as db:
        fresh: list[tuple[str, int, int, float]] = []
        for path in files:
            key = _file_key(path)
            row = None
            if key is not None and db is not None:
                with contextlib.suppress(sqlite3.Error):
                    row = db.execute("SELECT seconds FROM durations WHERE path = ? AND "
                                     "mtime_ns = ? AND size = ?", key).fetchone()
            if row is not None:
                out[path] = float(row[0])
                continue
            seconds = header_seconds(path) if key is not None else None
            out[path] = seconds
            if key is not None and seconds is not None:
                fresh.append((*key, seconds))
        if db is not None and fresh:
            with contextlib.suppress(sqlite3.Error):  # a busy cache: read again next time
                db.executemany("INSERT OR REPLACE INTO durations (path, mtime_ns, size, "
                               "seconds) VALUES (?, ?, ?, ?)", fresh)
                db.commit()
    return out


def fill_durations(samples: list[Sample]) -> DurationReport:
    """Set each sample's missing ``duration`` from its audio's headers, and say how many
    were given, read, or could not be read (those stay None)."""
    report = DurationReport()
    missing = [s for s in samples if s.duration is None]
    report.given = len(samples) - len(missing)
    files = file_seconds([s.audio_filepath for s in missing if s.audio_filepath is not None])
    for sample in missing:
        if sample.audio_filepath is not None:
            seconds = files[sample.audio_filepath]
        elif sample.audio_bytes is not None:  # an encoded clip held in memory (hub sets)
            seconds = header_seconds(sample.audio_bytes)
        else:
            seconds = None
        if seconds is None:
            report.unreadable.append(sample.audio_filepath.name if sample.audio_filepath
                                     else sample.id)
        else:
            sample.duration = seconds
            report.read += 1
    return report
