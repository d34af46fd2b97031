"""What every router shares, in one object on ``app.state.runtime``: the settings, the
registry and the budget fixed when the app is made, and the model pool and per-model
batchers that live from start-up to shutdown. Routers take it through :data:`RuntimeDep`
instead of closing over ``create_app``'s locals, so each can live in its own module."""

from __future__ import annotations

from core.api.batcher import ModelBatcher
from core.api.errors import ApiError
from core.api.pool import ModelPool
from core.api.settings import OPENAI_DEFAULT_MODEL, ServeSettings
from core.asr.registry import AsrRegistry, load_asr_registry
from core.asr.spec import AsrModelSpec
from core.registry_file import RegistryError
from core.system import BUDGET_SHARE, available_memory_gb, read_machine

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request


@dataclass
class Runtime:
    settings: ServeSettings
    registry: AsrRegistry
    budget_gb: float  # loaded models' total
    default_model: str  # for requests naming no model or OPENAI_DEFAULT_MODEL
    max_bytes: int  # the largest upload accepted
    _pool: ModelPool | None = None
    batchers: dict[str, ModelBatcher] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> Runtime:
        """Registry and budget read once, when the app is made (free memory now, before
        any model is loaded, is what the budget is a share of)."""
        registry = load_asr_registry(Path(settings.registry_path) if settings.registry_path
                                     else None)
        budget = settings.budget_gb if settings.budget_gb is not None else \
            available_memory_gb(read_machine(), settings.device) * BUDGET_SHARE
        return cls(settings, registry, budget, settings.default_model or registry.default,
                   int(settings.max_upload_mb * 2**20))

    @property
    def pool(self) -> ModelPool:
        if self._pool is None:
            raise RuntimeError("the model pool starts with the app (its lifespan)")
        return self._pool

    def start(self) -> None:
        """The pool starts its idle-expiry thread: made at start-up, not at import."""
        self._pool = ModelPool(self.registry, self.settings.device, self.budget_gb,
                               self.settings.model_ttl)
        self.batchers = {}

    def close(self) -> None:
        """Batchers first (they use the pool), then the pool frees the models."""
        for batcher in self.batchers.values():
            batcher.close()
        self.pool.close()

    def resolve(self, name: str | None) -> tuple[str, AsrModelSpec]:
        """The registry key and spec a request's ``model`` means: none, or OpenAI's default
        name (unless the registry has a model of that name), is the server's default."""
        key = name or self.default_model
        if key == OPENAI_DEFAULT_MODEL and key not in self.registry.models:
            key = self.default_model
        try:
            return key, self.registry.get(key)
        except RegistryError as exc:
            raise ApiError(404, str(exc), "model_not_found", "model") from exc

    def batcher_for(self, key: str) -> ModelBatcher:
        """The model's batcher, made on its first request."""
        batcher = self.batchers.get(key)
        if batcher is None:
            batcher = self.batchers[key] = ModelBatcher(self.pool, key, self.settings)
        return batcher


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
