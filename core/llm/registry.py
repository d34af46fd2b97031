"""The chat-model registry, read from ``configs/llm.toml`` (a file users edit)."""

from __future__ import annotations

from core import paths
from core.registry_file import (
    RegistryError,
    check_entry,
    default_key,
    model_entries,
    read_registry,
)

from dataclasses import dataclass
from pathlib import Path

__all__ = ["REGISTRY_FILE", "LLMRegistry", "LLMSpec", "RegistryError", "load_registry"]

REGISTRY_FILE = "llm.toml"


@dataclass(frozen=True)
class LLMSpec:
    """One chat model: where its weights are and how to load them."""

    key: str
    source: str
    label: str = ""
    gguf_file: str | None = None
    revision: str | None = None
    trust_remote_code: bool = False

    @property
    def is_bundled(self) -> bool:
        return self.source.startswith("bundled:")

    @property
    def display(self) -> str:
        return self.label or self.key


@dataclass(frozen=True)
class LLMRegistry:
    default: str
    models: dict[str, LLMSpec]

    def get(self, key: str | None = None) -> LLMSpec:
        key = key or self.default
        if key not in self.models:
            raise RegistryError(f"unknown chat model {key!r}; known: {', '.join(self.models)}")
        return self.models[key]


def load_registry(path: Path | None = None) -> LLMRegistry:
    """Parse the registry, with a message that names the file when it is wrong."""
    path = path or paths.config_file(REGISTRY_FILE)
    data = read_registry(path, "chat-model registry")
    allowed = set(LLMSpec.__dataclass_fields__) - {"key"}
    models: dict[str, LLMSpec] = {}
    for key, entry in model_entries(path, data).items():
        check_entry(path, key, entry, allowed)
        models[key] = LLMSpec(key=key, **entry)
    return LLMRegistry(default=default_key(path, data, models), models=models)
