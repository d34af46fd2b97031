"""Server settings, one dataclass; ``ert serve`` flags map onto it one to one."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# What OpenAI's clients send when the caller names no model: the server's default model.
OPENAI_DEFAULT_MODEL = "whisper-1"


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    device: str = "cpu"
    # When set, every route but /health needs ``Authorization: Bearer <key>``.
    api_key: str | None = field(default_factory=lambda: os.environ.get("ERT_API_KEY") or None)
    max_upload_mb: float = 25.0
    budget_gb: float | None = None  # loaded models' total; None: 80 % of free memory at start
    batching: bool = True
    batch_window_ms: float = 25.0  # how long the first request of a batch waits for company
    max_batch: int = 16
    queue_size: int = 64  # waiting requests per model before 503
    registry_path: str | None = None
    # For requests naming no model or OPENAI_DEFAULT_MODEL; None: the registry's default.
    default_model: str | None = None
    # Unload a model nobody used for this long (seconds; -1 never, 0 after each request).
    model_ttl: float = 300.0
