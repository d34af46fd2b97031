"""``/health``: liveness plus what an operator wants at a glance (loaded models, memory
against the budget, each model's queue). Open without the API key: see ``core.api.guard``."""

from __future__ import annotations

from core.api.runtime import RuntimeDep

from typing import Any

import psutil
from fastapi import APIRouter

router = APIRouter()


@router.get("/health")
async def health(runtime: RuntimeDep) -> dict[str, Any]:
    pool, settings = runtime.pool, runtime.settings
    vm = psutil.virtual_memory()
    return {"status": "ok", "device": settings.device, "models_loaded": pool.loaded(),
            "memory": {"ram_percent": vm.percent,
                       "ram_available_gb": round(vm.available / 2**30, 2),
                       "budget_gb": round(runtime.budget_gb, 2),
                       "models_gb": round(pool.used_gb(), 2)},
            "batching": settings.batching,
            "queues": {k: {"waiting": b.queue.qsize(), "batches_run": b.batches_run,
                           "largest_batch": b.largest_batch}
                       for k, b in runtime.batchers.items()}}
