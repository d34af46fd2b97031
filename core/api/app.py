"""The FastAPI application: ``create_app`` composes the routers, the gate and the error
handlers around one :class:`~core.api.runtime.Runtime` (settings, registry, model pool,
batchers) that the routers receive as a dependency.

Routes: /health (``routers.health``), /v1/models and the model-lifetime routes /api/ps
(list, load, unload; speaches' names; ``routers.models``), /v1/audio/transcriptions
(``routers.transcriptions``, which tells how a file goes through).

Errors are JSON in OpenAI's shape (``core.api.errors``) so existing clients show them:
bad audio 400, a model that cannot give the timestamps asked for 400, a model the server
cannot load (not downloaded and the hub unreachable, over the memory budget) 400, unknown
model 404, oversized upload 413, missing or wrong key 401, full queue 503. Only the full
queue is worth a retry: OpenAI's clients retry 408, 409, 429 and 5xx, so nothing else is
one. ``model`` left out, or ``whisper-1`` (what OpenAI's clients send by default), is the
server's default.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps before torch)
from core.api.errors import add_error_handlers
from core.api.guard import make_guard
from core.api.routers import health, models, transcriptions
from core.api.runtime import Runtime
from core.api.settings import ServeSettings

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The app for ``settings``: registry and memory budget read now, the model pool
    started with the app's lifespan and closed with it."""
    settings = settings or ServeSettings()
    runtime = Runtime.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        yield
        runtime.close()

    app = FastAPI(title="ERT transcription API", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.runtime = runtime
    app.middleware("http")(make_guard(settings, runtime.max_bytes))
    add_error_handlers(app)
    for router in (health.router, models.router, transcriptions.router):
        app.include_router(router)
    return app


def serve(settings: ServeSettings) -> None:
    import uvicorn

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level="info")
