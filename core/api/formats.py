"""OpenAI-compatible response bodies for ``/v1/audio/transcriptions``.

The batch backends return one text per clip, without timestamps, so the
timed formats (verbose_json, srt, vtt) carry a single segment spanning the
whole clip.
"""

from __future__ import annotations

from typing import Any

FORMATS = ("json", "text", "verbose_json", "srt", "vtt")


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render(fmt: str, text: str, duration: float, language: str | None) -> tuple[Any, str]:
    """The body and its media type."""
    if fmt == "json":
        return {"text": text}, "application/json"
    if fmt == "text":
        return text, "text/plain"
    if fmt == "verbose_json":
        return {"task": "transcribe", "language": language, "duration": round(duration, 3),
                "text": text, "segments": [{"id": 0, "seek": 0, "start": 0.0,
                                            "end": round(duration, 3), "text": text}]}, \
            "application/json"
    if fmt == "srt":
        return f"1\n{_stamp(0, ',')} --> {_stamp(duration, ',')}\n{text}\n", "text/plain"
    if fmt == "vtt":
        return f"WEBVTT\n\n{_stamp(0, '.')} --> {_stamp(duration, '.')}\n{text}\n", "text/vtt"
    raise ValueError(f"response_format must be one of {', '.join(FORMATS)}")
