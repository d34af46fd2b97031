"""The FastAPI application: /health, /v1/models and /v1/audio/transcriptions.

Errors are JSON in OpenAI's shape (``{"error": {"message", "type", "code"}}``)
so existing clients show them: bad audio 400, unknown model 404, oversized
upload 413, missing or wrong key 401, full queue 503.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps before torch)
from core.api.batcher import ModelBatcher, QueueFull
from core.api.formats import FORMATS, render
from core.api.pool import ModelPool, ModelTooLarge
from core.api.settings import ServeSettings
from core.asr.base import DecodeOptions
from core.asr.registry import load_asr_registry
from core.audio import SAMPLE_RATE, AudioError, load_audio
from core.evaluation.planner import BUDGET_SHARE, available_memory_gb
from core.hub import ModelUnavailableError
from core.registry_file import RegistryError
from core.system import read_machine

import hmac
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response
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
        state["pool"] = ModelPool(registry, settings.device, budget)
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

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [
            {"id": key, "object": "model", "owned_by": "ert", "backend": spec.backend,
             "languages": list(spec.languages)} for key, spec in registry.models.items()]}

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(
        file: UploadFile = File(...),  # noqa: B008  (FastAPI's declaration style)
        model: str = Form(None),
        language: str | None = Form(None),
        response_format: str = Form("json"),
        temperature: float = Form(0.0),
        prompt: str | None = Form(None),
    ) -> Any:
        key = model or settings.default_model or registry.default
        try:
            spec = registry.get(key)
        except RegistryError as exc:
            raise ApiError(404, str(exc), "model_not_found") from exc
        if response_format not in FORMATS:
            raise ApiError(400, f"response_format must be one of {', '.join(FORMATS)}")
        data = await file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ApiError(413, f"the file is over the {settings.max_upload_mb:g} MB limit")
        try:
            audio = load_audio(data, name=file.filename or "upload")
        except AudioError as exc:
            raise ApiError(400, str(exc)) from exc
        batcher = state["batchers"].get(key)
        if batcher is None:
            batcher = state["batchers"][key] = ModelBatcher(state["pool"], key, settings)
        # Sampling temperature is accepted for compatibility; decoding is greedy/beam.
        options = DecodeOptions(language=language, prompt=prompt)
        try:
            result = await batcher.submit(audio, options)
        except QueueFull as exc:
            raise ApiError(503, str(exc), "server_overloaded") from exc
        except (ModelUnavailableError, ModelTooLarge) as exc:
            raise ApiError(503, str(exc), "model_unavailable") from exc
        if result.error:
            raise ApiError(400, f"transcription failed: {result.error}")
        body, media = render(response_format, result.text, audio.size / SAMPLE_RATE,
                             language or (spec.languages[0] if spec.languages[0] != "*"
                                          else None))
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
