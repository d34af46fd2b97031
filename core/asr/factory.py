"""Which class runs each ``backend = "..."`` of the registry: adding one is a module and a line.

Modules are imported only when a class is asked for (the registry checks each entry against
what its class declares: families, dtype choices); a backend module imports its engine
(torch, CTranslate2) only to load, so reading the registry and planning stay cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.asr.base import Backend
    from core.asr.spec import AsrModelSpec

# name -> "module:class"; the class declares its own defaults (memory, speed, dtypes).
BACKENDS: dict[str, str] = {
    "transformers": "core.asr.transformers_backend:TransformersBackend",
    "faster-whisper": "core.asr.faster_whisper_backend:FasterWhisperBackend",
    "endpoint": "core.asr.endpoint_backend:EndpointBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The class registered as ``name``, imported now (without loading any model)."""
    try:
        module, _, attr = BACKENDS[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown ASR backend {name!r}; known: {', '.join(BACKENDS)}") from None
    return getattr(importlib.import_module(module), attr)


def create_backend(spec: AsrModelSpec, device: str = "cpu", dtype: str = "auto") -> Backend:
    """The backend that runs ``spec`` on ``device`` ("cpu" or "cuda"), not yet loaded;
    ``dtype`` is the run's request (see :func:`core.asr.dtype.load_dtype`)."""
    return backend_class(spec.backend)(spec, device, dtype)
