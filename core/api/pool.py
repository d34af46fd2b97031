"""Loaded models for the server: loaded on first use, evicted least-recently-used,
unloaded when idle.

A model is loaded only if its derived memory need fits the budget beside the
models already loaded; otherwise the least recently used ones are freed
first. Loading happens once per model even when requests race for it. A model
nobody used for ``ttl_seconds`` is unloaded (-1: never; 0: as soon as its
request ends), as speaches does; :meth:`ModelPool.load` / :meth:`ModelPool.unload`
do it by hand (the ``/api/ps`` routes).
"""

from __future__ import annotations

from core.asr.base import Backend
from core.asr.factory import create_backend
from core.asr.memory import need_gb
from core.asr.registry import AsrRegistry

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
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
    users: int = 0  # requests holding it now: never unloaded for idleness meanwhile


class ModelPool:
    def __init__(self, registry: AsrRegistry, device: str, budget_gb: float,
                 ttl_seconds: float = -1) -> None:
        self.registry, self.device, self.budget_gb = registry, device, budget_gb
        self.ttl_seconds = ttl_seconds
        self._models: OrderedDict[str, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.evictions: list[str] = []
        self.expired: list[str] = []  # unloaded for idleness, in order
        self._closed = threading.Event()
        if ttl_seconds > 0:
            threading.Thread(target=self._expire_loop, name="ert-model-ttl",
                             daemon=True).start()

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

    @contextmanager
    def use(self, key: str) -> Iterator[Loaded]:
        """The loaded model, held (its lock) for one inference; idle time counts from the end."""
        with self._lock:
            entry = self._models.get(key)
            if entry is not None:
                entry.users += 1
        if entry is None:
            entry = self.get(key)
            with self._lock:
                entry.users += 1
        try:
            with entry.lock:
                yield entry
        finally:
            with self._lock:
                entry.users -= 1
                entry.last_used = time.time()
            if self.ttl_seconds == 0:
                self._unload_if_idle(key, 0.0)

    def load(self, key: str) -> bool:
        """Load ``key`` now; False when it already was."""
        with self._lock:
            if key in self._models:
                return False
        self.get(key)
        return True

    def unload(self, key: str) -> bool:
        """Free ``key`` (after its running inference); False when it was not loaded."""
        with self._lock:
            entry = self._models.pop(key, None)
        if entry is None:
            return False
        with entry.lock:
            entry.backend.free()
        return True

    def _unload_if_idle(self, key: str, ttl: float) -> None:
        with self._lock:
            entry = self._models.get(key)
            if entry is None or entry.users or time.time() - entry.last_used < ttl:
                return
            del self._models[key]
        with entry.lock:
            entry.backend.free()
        self.expired.append(key)

    def _expire_loop(self) -> None:
        period = min(1.0, self.ttl_seconds / 4)
        while not self._closed.wait(period):
            for key in list(self._models):
                self._unload_if_idle(key, self.ttl_seconds)

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
        self._closed.set()
        with self._lock:
            models = list(self._models.values())
            self._models.clear()
        for entry in models:
            entry.backend.free()
