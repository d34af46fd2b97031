"""The FastAPI application: /health, /v1/models, /v1/audio/transcriptions and the
model-lifetime routes /api/ps (list, load, unload; speaches' names).

Errors are JSON in OpenAI's shape (``{"error": {"message", "type", "code"}}``)
so existing clients show them: bad audio 400, a model that cannot give the
timestamps asked for 400, unknown model 404, oversized upload 413, missing or
wrong key 401, full queue 503.

Three ways through a transcription: short clips in json/text go to the model's
batcher (concurrent requests share a forward pass); a long one is first cut at
pauses by the VAD and its pieces batched; timed formats (verbose_json, srt, vtt)
and ``stream=true`` run the model's own segments, the stream sending each
segment's text as a server-sent ``transcript.text.delta`` event as soon as it is
recognised, then ``transcript.text.done`` (OpenAI's event shapes).
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps before torch)
from core.api.batcher import ModelBatcher, QueueFull
from core.api.formats import FORMATS, TIMED, joined, render, sse
from core.api.pool import ModelPool, ModelTooLarge
from core.api.settings import ServeSettings
from core.asr.base import DecodeOptions
from core.asr.factory import create_backend
from core.asr.registry import load_asr_registry
from core.asr.timing import NONE, Segment, TimestampsUnavailable, require
from core.asr.vad import pieces
from core.audio import SAMPLE_RATE, AudioError, load_audio
from core.evaluation.planner import BUDGET_SHARE, available_memory_gb
from core.hub import ModelUnavailableError
from core.registry_file import RegistryError
from core.system import read_machine

import asyncio
import hmac
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}},
                        status_code=status)


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    registry = load_asr_registry(Path(settings.registry_path) if settings.registry_path
                                 else None)
    budget = settings.budget_gb if settings.budget_gb is not None else \
        available_memory_gb(read_machine(), settings.device) * BUDGET_SHARE
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
                              "authentication_error")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_bytes + 64 * 1024:
            return _error(413, f"request of {int(length) / 2**20:.1f} MB is over the "
                               f"{settings.max_upload_mb:g} MB limit", "invalid_request_error")
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.kind)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), "invalid_request_error")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"{type(exc).__name__}: {exc}", "server_error")

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

    def spec_of(key: str) -> Any:
        try:
            return registry.get(key)
        except RegistryError as exc:
            raise ApiError(404, str(exc), "model_not_found") from exc

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        loaded = set(state["pool"].loaded())
        return {"object": "list", "data": [
            {"id": key, "object": "model", "owned_by": "ert", "backend": spec.backend,
             "languages": list(spec.languages), "loaded": key in loaded}
            for key, spec in registry.models.items()]}

    @app.get("/api/ps")
    async def loaded_models() -> dict[str, Any]:
        return {"models": state["pool"].loaded()}

    @app.post("/api/ps/{model_id:path}", status_code=201)
    async def load_model(model_id: str) -> dict[str, Any]:
        spec_of(model_id)
        try:
            fresh = await asyncio.to_thread(state["pool"].load, model_id)
        except (ModelUnavailableError, ModelTooLarge) as exc:
            raise ApiError(503, str(exc), "model_unavailable") from exc
        if not fresh:
            raise ApiError(409, f"{model_id} is already loaded", "conflict")
        return {"id": model_id, "loaded": True}

    @app.delete("/api/ps/{model_id:path}")
    async def unload_model(model_id: str) -> dict[str, Any]:
        spec_of(model_id)
        if not await asyncio.to_thread(state["pool"].unload, model_id):
            raise ApiError(404, f"{model_id} is not loaded", "model_not_loaded")
        return {"id": model_id, "loaded": False}

    def batcher_for(key: str) -> ModelBatcher:
        batcher = state["batchers"].get(key)
        if batcher is None:
            batcher = state["batchers"][key] = ModelBatcher(state["pool"], key, settings)
        return batcher

    async def transcribe_text(key: str, audio: Any, options: DecodeOptions) -> str:
        """Batched: a long clip cut at pauses first, its pieces batched like requests."""
        parts = await asyncio.to_thread(pieces, audio)
        try:
            results = await asyncio.gather(*(batcher_for(key).submit(p, options) for p in parts))
        except QueueFull as exc:
            raise ApiError(503, str(exc), "server_overloaded") from exc
        failed = [r.error for r in results if r.error]
        if failed:
            raise ApiError(400, f"transcription failed: {failed[0]}")
        return " ".join(r.text for r in results if r.text)

    def timed(key: str, audio: Any, options: DecodeOptions, words: bool) -> list[Segment]:
        with state["pool"].use(key) as entry:
            return list(entry.backend.segments(audio, options, words))

    async def stream_events(key: str, audio: Any, options: DecodeOptions,
                            level: str) -> AsyncIterator[str]:
        """Each segment's (or, for a model without timestamps, each pause-cut piece's) text
        as it is recognised; the model runs on a thread, the events leave as they come."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def put(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        def work() -> None:
            try:
                with state["pool"].use(key) as entry:
                    for text in _texts(entry.backend, audio, options, level):
                        if stop.is_set():
                            return
                        put("text", text)
            except Exception as exc:  # reported in the stream: the status line is sent
                put("error", exc)
            finally:
                put("end", None)

        loop.run_in_executor(None, work)  # ends by itself: on its last segment or on `stop`
        parts: list[str] = []
        try:
            while True:
                kind, value = await queue.get()
                if kind == "end":
                    break
                if kind == "error":
                    yield sse({"type": "error", "error": {
                        "message": f"{type(value).__name__}: {value}", "type": "server_error"}})
                    return
                if value.strip():
                    yield sse({"type": "transcript.text.delta",
                               "delta": (" " if parts else "") + value.strip()})
                    parts.append(value.strip())
            yield sse({"type": "transcript.text.done", "text": " ".join(parts)})
            yield "data: [DONE]\n\n"
        finally:
            stop.set()  # a client gone: the model stops after its current segment

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
        key = model or settings.default_model or registry.default
        spec = spec_of(key)
        if response_format not in FORMATS:
            raise ApiError(400, f"response_format must be one of {', '.join(FORMATS)}")
        unknown = set(granularities or []) - {"word", "segment"}
        if unknown:
            raise ApiError(400, f"timestamp_granularities[] must be word or segment, not "
                                f"{', '.join(sorted(unknown))}")
        words = "word" in (granularities or []) and response_format == "verbose_json"
        level = create_backend(spec, settings.device).timestamp_level()
        if response_format in TIMED and not stream:
            try:
                require(key, level, words)
            except TimestampsUnavailable as exc:
                raise ApiError(400, str(exc), "timestamps_unavailable") from exc
        data = await file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ApiError(413, f"the file is over the {settings.max_upload_mb:g} MB limit")
        try:
            audio = load_audio(data, name=file.filename or "upload")
        except AudioError as exc:
            raise ApiError(400, str(exc)) from exc
        # Sampling temperature is accepted for compatibility; decoding is greedy/beam.
        options = DecodeOptions(language=language, prompt=prompt)
        if stream:
            return StreamingResponse(stream_events(key, audio, options, level),
                                     media_type="text/event-stream")
        segments = None
        try:
            if response_format in TIMED:
                segments = await asyncio.to_thread(timed, key, audio, options, words)
                text = joined(segments)
            else:
                text = await transcribe_text(key, audio, options)
        except TimestampsUnavailable as exc:
            raise ApiError(400, str(exc), "timestamps_unavailable") from exc
        except (ModelUnavailableError, ModelTooLarge) as exc:
            raise ApiError(503, str(exc), "model_unavailable") from exc
        body, media = render(response_format, text, audio.size / SAMPLE_RATE,
                             language or (spec.languages[0] if spec.languages[0] != "*"
                                          else None), segments, words)
        if media == "application/json":
            return JSONResponse(body)
        return PlainTextResponse(body, media_type=media)

    app.state.settings = settings
    app.state.runtime = state
    return app


def _texts(backend: Any, audio: Any, options: DecodeOptions, level: str) -> Iterator[str]:
    """What a stream sends, in order: the model's segments, or for a model without
    timestamps the text of each piece of the clip cut at pauses."""
    if level != NONE:
        for segment in backend.segments(audio, options):
            yield segment.text
        return
    for piece in pieces(audio):
        result = backend.transcribe([piece], options)[0]
        if result.error:
            raise RuntimeError(f"transcription failed: {result.error}")
        yield result.text


def serve(settings: ServeSettings) -> None:
    import uvicorn

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level="info")
