"""OpenAI's ``/v1/audio/transcriptions``: one way through, whatever the response format.

The file is cut at pauses into pieces of at most 30 s, each piece goes to the model's
batcher (concurrent requests share a forward pass) and is decoded with the timestamps the
model can give; json and text are that decode's text, verbose_json/srt/vtt its segments,
and ``stream=true`` sends each piece's segments as server-sent ``transcript.text.delta``
events as soon as the piece is decoded, then ``transcript.text.done`` (OpenAI's event
shapes). One decode behind every format, so the text never depends on the format.
"""

from __future__ import annotations

from core.api.batcher import QueueFull
from core.api.errors import ApiError, unloadable
from core.api.formats import FORMATS, TIMED, render, sse
from core.api.pool import ModelTooLarge
from core.api.runtime import Runtime, RuntimeDep
from core.asr.base import DecodeOptions, Transcript
from core.asr.factory import create_backend
from core.asr.timing import NONE, TimestampsUnavailable, clamp, require, shifted
from core.asr.vad import pieces
from core.audio import SAMPLE_RATE, AudioError, load_audio
from core.hub import ModelUnavailableError

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

router = APIRouter()

# A file's pieces on their way through the batcher: each one's start (s), its transcript to come.
Parts = list[tuple[float, "asyncio.Future[Transcript]"]]


async def enqueue(runtime: Runtime, key: str, audio: np.ndarray,
                  options: DecodeOptions) -> Parts:
    """The clip cut at pauses into pieces of at most 30 s, each queued at once on the
    model's batcher (concurrent requests share its forward passes): each piece's start
    in seconds and its transcript to come. A full queue takes back what it had queued."""
    spans = await asyncio.to_thread(pieces, audio)
    batcher = runtime.batcher_for(key)
    parts: Parts = []
    try:
        for span in spans:
            parts.append((span.start / SAMPLE_RATE,
                          batcher.enqueue(audio[span.start:span.end], options)))
    except QueueFull as exc:
        for _, part in parts:
            part.cancel()
        raise ApiError(503, str(exc), "server_overloaded") from exc
    return parts


async def finished(key: str, part: asyncio.Future[Transcript]) -> Transcript:
    """A piece's transcript, its failure as the client error it is."""
    try:
        result = await part
    except (ModelUnavailableError, ModelTooLarge) as exc:
        raise unloadable(key, exc) from exc
    except TimestampsUnavailable as exc:
        raise ApiError(400, str(exc), "timestamps_unavailable") from exc
    if result.error:
        raise ApiError(400, f"transcription failed: {result.error}")
    return result


async def stream_events(key: str, parts: Parts) -> AsyncIterator[str]:
    """Each piece's segments (a model without timestamps: its text) as deltas as soon
    as the piece is decoded, in order; then the whole text, the one json gives."""
    said: list[str] = []
    try:
        for _, part in parts:
            try:
                result = await finished(key, part)
            except ApiError as exc:  # reported in the stream: the status line is sent
                yield sse({"type": "error", "error": {
                    "message": exc.message, "type": "server_error", "param": exc.param,
                    "code": exc.code}})
                return
            texts = [s.text for s in result.segments] if result.segments is not None \
                else [result.text]
            for text in (t.strip() for t in texts):
                if text:
                    yield sse({"type": "transcript.text.delta",
                               "delta": (" " if said else "") + text})
                    said.append(text)
        yield sse({"type": "transcript.text.done", "text": " ".join(said)})
        yield "data: [DONE]\n\n"
    finally:
        for _, part in parts:  # a client gone: pieces not yet decoded leave their batch
            part.cancel()


# Every refusal that needs no decode (format, granularity, timestamps the model cannot
# give, size, audio, a model that cannot load) comes before any answer starts, streamed
# or not. A comment, not a docstring: that would change the route's /openapi.json entry.
@router.post("/v1/audio/transcriptions")
async def transcriptions(
    runtime: RuntimeDep,
    file: UploadFile = File(...),  # noqa: B008  (FastAPI's declaration style)
    model: str = Form(None),
    language: str | None = Form(None),
    response_format: str = Form("json"),
    temperature: float = Form(0.0),
    prompt: str | None = Form(None),
    granularities: list[str] | None = Form(None, alias="timestamp_granularities[]"),  # noqa: B008
    stream: bool = Form(False),
) -> Any:
    settings, max_bytes = runtime.settings, runtime.max_bytes
    key, spec = runtime.resolve(model)
    if response_format not in FORMATS:
        raise ApiError(400, f"response_format must be one of {', '.join(FORMATS)}",
                       "invalid_value", "response_format")
    unknown = set(granularities or []) - {"word", "segment"}
    if unknown:
        raise ApiError(400, f"timestamp_granularities[] must be word or segment, not "
                            f"{', '.join(sorted(unknown))}", "invalid_value",
                       "timestamp_granularities[]")
    words = "word" in (granularities or []) and response_format == "verbose_json"
    level = create_backend(spec, settings.device).timestamp_level()
    if response_format in TIMED and not stream:
        try:
            require(key, level, words)
        except TimestampsUnavailable as exc:
            raise ApiError(400, str(exc), "timestamps_unavailable", "response_format") from exc
    data = await file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(413, f"the file is over the {settings.max_upload_mb:g} MB limit",
                       "file_too_large", "file")
    try:
        audio = load_audio(data, name=file.filename or "upload")
    except AudioError as exc:
        raise ApiError(400, str(exc), "invalid_audio", "file") from exc
    try:  # loaded before any answer starts: a model that cannot load is this request's 400
        await asyncio.to_thread(runtime.pool.get, key)
    except (ModelUnavailableError, ModelTooLarge) as exc:
        raise unloadable(key, exc) from exc
    # One decode for every format: timed whenever the model can time its text, so the
    # text never depends on the format. Sampling temperature is accepted for
    # compatibility; decoding is greedy/beam.
    options = DecodeOptions(language=language, prompt=prompt, timestamps=level)
    parts = await enqueue(runtime, key, audio, options)
    if stream:
        return StreamingResponse(stream_events(key, parts), media_type="text/event-stream")
    try:
        results = [(offset, await finished(key, part)) for offset, part in parts]
    finally:
        for _, part in parts:
            part.cancel()
    text = " ".join(r.text for _, r in results if r.text)
    duration = audio.size / SAMPLE_RATE
    segments = None if level == NONE else \
        [clamp(shifted(s, offset), duration) for offset, r in results for s in r.segments or []]
    spoken = language or next((r.language for _, r in results if r.language), None) or \
        (spec.languages[0] if spec.languages[0] != "*" else None)
    body, media = render(response_format, text, duration, spoken, segments, words)
    if media == "application/json":
        return JSONResponse(body)
    return PlainTextResponse(body, media_type=media)
