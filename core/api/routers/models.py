"""The models: OpenAI's listing (``/v1/models``) and their lifetime by hand under
speaches' names (``/api/ps``: list loaded, load, unload), beside the pool's own loading
on first use and unloading when idle."""

from __future__ import annotations

from core.api.errors import ApiError, unloadable
from core.api.pool import ModelTooLarge
from core.api.runtime import RuntimeDep
from core.api.settings import OPENAI_DEFAULT_MODEL
from core.hub import ModelUnavailableError

import asyncio
from typing import Any

from fastapi import APIRouter

router = APIRouter()


# Route handlers carry comments, not docstrings: a docstring would become the route's
# description in /openapi.json, which this split keeps as it was.

# Every registry model, and ``whisper-1`` as an alias of the default unless the registry
# has a model of that name: OpenAI's clients send it when given none.
@router.get("/v1/models")
async def models(runtime: RuntimeDep) -> dict[str, Any]:
    registry, default_model = runtime.registry, runtime.default_model
    loaded = set(runtime.pool.loaded())
    listed = [{"id": key, "object": "model", "owned_by": "ert", "backend": spec.backend,
               "languages": list(spec.languages), "loaded": key in loaded}
              for key, spec in registry.models.items()]
    if OPENAI_DEFAULT_MODEL not in registry.models:
        listed.append({"id": OPENAI_DEFAULT_MODEL, "object": "model", "owned_by": "ert",
                       "alias_of": default_model, "loaded": default_model in loaded})
    return {"object": "list", "data": listed}


@router.get("/api/ps")
async def loaded_models(runtime: RuntimeDep) -> dict[str, Any]:
    return {"models": runtime.pool.loaded()}


# 201 when loaded now, 409 when it already was (speaches' answers).
@router.post("/api/ps/{model_id:path}", status_code=201)
async def load_model(model_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    key, _ = runtime.resolve(model_id)
    try:
        fresh = await asyncio.to_thread(runtime.pool.load, key)
    except (ModelUnavailableError, ModelTooLarge) as exc:
        raise unloadable(key, exc) from exc
    if not fresh:
        raise ApiError(409, f"{key} is already loaded", "conflict")
    return {"id": key, "loaded": True}


@router.delete("/api/ps/{model_id:path}")
async def unload_model(model_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    key, _ = runtime.resolve(model_id)
    if not await asyncio.to_thread(runtime.pool.unload, key):
        raise ApiError(404, f"{key} is not loaded", "model_not_loaded")
    return {"id": key, "loaded": False}
