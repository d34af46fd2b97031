"""Loaded models for the server: loaded on first use, evicted least-recently-used.

A model is loaded only if its derived memory need fits the budget beside the
models already loaded; otherwise the least recently used ones are freed
first. Loading happens once per model even when requests race for it.
"""

from __future__ import annotations

from core.asr.base import Backend
from core.asr.factory import create_backend
from core.asr.memory import need_gb
from core.asr.registry import AsrRegistry

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass


class ModelTooLarge(RuntimeError):
    """The model alone needs more than the server's whole budget."""


@dataclass
class Loaded:
    backend: Backend
    need_gb: float
    loaded_at: float
    last_used: float
    lock: threading.Lock  # one inference at a time per model


class ModelPool:
    def __init__(self, registry: AsrRegistry, device: str, budget_gb: float) -> None:
        self.registry, self.device, self.budget_gb = registry, device, budget_gb
        self._models: OrderedDict[str, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.evictions: list[str] = []

    def used_gb(self) -> float:
        return sum(m.need_gb for m in self._models.values())

    def loaded(self) -> list[str]:
        return list(self._models)

    def get(self, key: str) -> Loaded:
        """The loaded model, loading (and evicting) as needed. Thread-safe."""
        spec = self.registry.get(key)
        with self._lock:
            entry = self._models.get(key)
            if entry is not None:
                self._models.move_to_end(key)
                entry.last_used = time.time()
                return entry
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._models:
                    return self._models[key]
            need = need_gb(spec, self.device)
            if need > self.budget_gb:
                raise ModelTooLarge(f"{key} needs {need:.1f} GB, more than the server's "
                                    f"{self.budget_gb:.1f} GB budget")
            self._evict_for(need)
            backend = create_backend(spec, self.device)
            backend.load()
            entry = Loaded(backend, need, time.time(), time.time(), threading.Lock())
            with self._lock:
                self._models[key] = entry
            return entry

    def _evict_for(self, need: float) -> None:
        while True:
            with self._lock:
                if self.used_gb() + need <= self.budget_gb or not self._models:
                    return
                key, victim = self._models.popitem(last=False)
            with victim.lock:  # let its running batch finish
                victim.backend.free()
            self.evictions.append(key)

    def close(self) -> None:
        with self._lock:
            models = list(self._models.values())
            self._models.clear()
        for entry in models:
            entry.backend.free()
