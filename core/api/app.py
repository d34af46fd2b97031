"""The FastAPI application: /health, /v1/models, /v1/audio/transcriptions and the
model-lifetime routes /api/ps (list, load, unload; speaches' names).

Errors are JSON in OpenAI's shape (``{"error": {"message", "type", "param",
"code"}}``) so existing clients show them: bad audio 400, a model that cannot give
the timestamps asked for 400, a model the server cannot load (not downloaded and
the hub unreachable, over the memory budget) 400, unknown model 404, oversized
upload 413, missing or wrong key 401, full queue 503. Only the full queue is worth
a retry: OpenAI's clients retry 408, 409, 429 and 5xx, so nothing else is one.

One way through a transcription, whatever the response format: the file is cut
at pauses into pieces of at most 30 s, each piece goes to the model's batcher
(concurrent requests share a forward pass) and is decoded with the timestamps the
model can give; json and text are that decode's text, verbose_json/srt/vtt its
segments, and ``stream=true`` sends each piece's segments as server-sent
``transcript.text.delta`` events as soon as the piece is decoded, then
``transcript.text.done`` (OpenAI's event shapes). ``model`` left out, or
``whisper-1`` (what OpenAI's clients send by default), is the server's default.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps before torch)
from core.api.batcher import ModelBatcher, QueueFull
from core.api.formats import FORMATS, TIMED, render, sse
from core.api.pool import ModelPool, ModelTooLarge
from core.api.settings import OPENAI_DEFAULT_MODEL, ServeSettings
from core.asr.base import DecodeOptions, Transcript
from core.asr.factory import create_backend
from core.asr.registry import load_asr_registry
from core.asr.timing import NONE, TimestampsUnavailable, clamp, require, shifted
from core.asr.vad import pieces
from core.audio import SAMPLE_RATE, AudioError, load_audio
from core.evaluation.planner import BUDGET_SHARE, available_memory_gb
from core.hub import ModelUnavailableError
from core.registry_file import RegistryError
from core.system import read_machine

import asyncio
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

# A file's pieces on their way through the batcher: each one's start (s), its transcript to come.
Parts = list[tuple[float, "asyncio.Future[Transcript]"]]


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def _error(status: int, message: str, code: str | None = None,
           param: str | None = None) -> JSONResponse:
    """OpenAI's error body; its ``type`` follows from the status as OpenAI's does."""
    kind = "authentication_error" if status == 401 else \
        "server_error" if status >= 500 else "invalid_request_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param,
                                   "code": code}}, status_code=status)


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    registry = load_asr_registry(Path(settings.registry_path) if settings.registry_path
                                 else None)
    budget = settings.budget_gb if settings.budget_gb is not None else \
        available_memory_gb(read_machine(), settings.device) * BUDGET_SHARE
    default_model = settings.default_model or registry.default
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["pool"] = ModelPool(registry, settings.device, budget, settings.model_ttl)
        state["batchers"] = {}
        yield
        for batcher in state["batchers"].values():
            batcher.close()
        state["pool"].close()

    app = FastAPI(title="ERT transcription API", version="1", lifespan=lifespan)
    max_bytes = int(settings.max_upload_mb * 2**20)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if settings.api_key and request.url.path != "/health":
            header = request.headers.get("authorization", "")
            given = header[7:] if header.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
                return _error(401, "missing or invalid API key (Authorization: Bearer …)",
                              "invalid_api_key")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_bytes + 64 * 1024:
            return _error(413, f"request of {int(length) / 2**20:.1f} MB is over the "
                               f"{settings.max_upload_mb:g} MB limit", "file_too_large", "file")
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.code, exc.param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"{type(exc).__name__}: {exc}")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        pool: ModelPool = state["pool"]
        vm = psutil.virtual_memory()
        return {"status": "ok", "device": settings.device, "models_loaded": pool.loaded(),
                "memory": {"ram_percent": vm.percent,
                           "ram_available_gb": round(vm.available / 2**30, 2),
                           "budget_gb": round(budget, 2), "models_gb": round(pool.used_gb(), 2)},
                "batching": settings.batching,
                "queues": {k: {"waiting": b.queue.qsize(), "batches_run": b.batches_run,
                               "largest_batch": b.largest_batch}
                           for k, b in state["batchers"].items()}}

    def resolve(name: str | None) -> tuple[str, Any]:
        """The registry key and spec a request's ``model`` means: none, or OpenAI's default
        name (unless the registry has a model of that name), is the server's default."""
        key = name or default_model
        if key == OPENAI_DEFAULT_MODEL and key not in registry.models:
            key = default_model
        try:
            return key, registry.get(key)
        except RegistryError as exc:
            raise ApiError(404, str(exc), "model_not_found", "model") from exc

    def unloadable(key: str, exc: Exception) -> ApiError:
        """A model the server cannot load: a client error, so that no client retries it."""
        return ApiError(400, f"{key} cannot be loaded here: {exc}", "model_unavailable",
                        "model")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        loaded = set(state["pool"].loaded())
        listed = [{"id": key, "object": "model", "owned_by": "ert", "backend": spec.backend,
                   "languages": list(spec.languages), "loaded": key in loaded}
                  for key, spec in registry.models.items()]
        if OPENAI_DEFAULT_MODEL not in registry.models:
            listed.append({"id": OPENAI_DEFAULT_MODEL, "object": "model", "owned_by": "ert",
                           "alias_of": default_model, "loaded": default_model in loaded})
        return {"object": "list", "data": listed}

    @app.get("/api/ps")
    async def loaded_models() -> dict[str, Any]:
        return {"models": state["pool"].loaded()}

    @app.post("/api/ps/{model_id:path}", status_code=201)
    async def load_model(model_id: str) -> dict[str, Any]:
        key, _ = resolve(model_id)
        try:
            fresh = await asyncio.to_thread(state["pool"].load, key)
        except (ModelUnavailableError, ModelTooLarge) as exc:
            raise unloadable(key, exc) from exc
        if not fresh:
            raise ApiError(409, f"{key} is already loaded", "conflict")
        return {"id": key, "loaded": True}

    @app.delete("/api/ps/{model_id:path}")
    async def unload_model(model_id: str) -> dict[str, Any]:
        key, _ = resolve(model_id)
        if not await asyncio.to_thread(state["pool"].unload, key):
            raise ApiError(404, f"{key} is not loaded", "model_not_loaded")
        return {"id": key, "loaded": False}

    def batcher_for(key: str) -> ModelBatcher:
        batcher = state["batchers"].get(key)
        if batcher is None:
            batcher = state["batchers"][key] = ModelBatcher(state["pool"], key, settings)
        return batcher

    async def enqueue(key: str, audio: Any, options: DecodeOptions) -> Parts:
        """The clip cut at pauses into pieces of at most 30 s, each queued at once on the
        model's batcher (concurrent requests share its forward passes): each piece's start
        in seconds and its transcript to come."""
        spans = await asyncio.to_thread(pieces, audio)
        batcher = batcher_for(key)
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

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(
        file: UploadFile = File(...),  # noqa: B008  (FastAPI's declaration style)
        model: str = Form(None),
        language: str | None = Form(None),
        response_format: str = Form("json"),
        temperature: float = Form(0.0),
        prompt: str | None = Form(None),
        granularities: list[str] | None = Form(None, alias="timestamp_granularities[]"),  # noqa: B008
        stream: bool = Form(False),
    ) -> Any:
        key, spec = resolve(model)
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
                raise ApiError(400, str(exc), "timestamps_unavailable",
                               "response_format") from exc
        data = await file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ApiError(413, f"the file is over the {settings.max_upload_mb:g} MB limit",
                           "file_too_large", "file")
        try:
            audio = load_audio(data, name=file.filename or "upload")
        except AudioError as exc:
            raise ApiError(400, str(exc), "invalid_audio", "file") from exc
        try:  # loaded before any answer starts: a model that cannot load is this request's 400
            await asyncio.to_thread(state["pool"].get, key)
        except (ModelUnavailableError, ModelTooLarge) as exc:
            raise unloadable(key, exc) from exc
        # One decode for every format: timed whenever the model can time its text, so the
        # text never depends on the format. Sampling temperature is accepted for
        # compatibility; decoding is greedy/beam.
        options = DecodeOptions(language=language, prompt=prompt, timestamps=level)
        parts = await enqueue(key, audio, options)
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

    app.state.settings = settings
    app.state.runtime = state
    return app


def serve(settings: ServeSettings) -> None:
    import uvicorn

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level="info")
