"""OpenAI-compatible response bodies for ``/v1/audio/transcriptions``.

Every format renders one decode: the text and the segments it was timed into
(:mod:`core.asr.timing`), so the words never depend on the format. A model that
cannot time its text is refused the timed formats (verbose_json, srt, vtt) by the
route, never given one segment spanning the clip.
"""

from __future__ import annotations

from core.asr.timing import Segment

import json
from typing import Any

FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
TIMED = ("verbose_json", "srt", "vtt")


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render(fmt: str, text: str, duration: float, language: str | None,
           segments: list[Segment] | None = None, words: bool = False) -> tuple[Any, str]:
    """The body and its media type; ``segments`` are required by the timed formats."""
    if fmt == "json":
        return {"text": text}, "application/json"
    if fmt == "text":
        return text, "text/plain"
    if fmt not in TIMED:
        raise ValueError(f"response_format must be one of {', '.join(FORMATS)}")
    if segments is None:
        raise ValueError(f"{fmt} needs the model's timed segments")
    if fmt == "verbose_json":
        body: dict[str, Any] = {
            "task": "transcribe", "language": language, "duration": round(duration, 3),
            "text": text, "segments": [
                {"id": i, "seek": 0, "start": s.start, "end": s.end, "text": s.text,
                 "tokens": [], "temperature": 0.0, "avg_logprob": s.avg_logprob,
                 "no_speech_prob": s.no_speech_prob} for i, s in enumerate(segments)]}
        if words:
            body["words"] = [{"word": w.word, "start": w.start, "end": w.end}
                             for s in segments for w in s.words]
        return body, "application/json"
    if fmt == "srt":
        return "".join(f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text}\n\n"
                       for i, s in enumerate(segments, 1)), "text/plain"
    return "WEBVTT\n\n" + "".join(f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text}\n\n"
                                  for s in segments), "text/vtt"


def sse(event: dict[str, Any]) -> str:
    """One server-sent event (the ``data:`` line OpenAI's streaming clients read)."""
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
