"""The chat-model registry, read from ``configs/llm.toml`` (a file users edit)."""

from __future__ import annotations

from core import paths

import tomllib
from dataclasses import dataclass
from pathlib import Path

REGISTRY_FILE = "llm.toml"


class RegistryError(ValueError):
    """The registry file is unreadable or names an unknown model."""


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
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RegistryError(f"cannot read the chat-model registry {path}: {exc}") from exc
    models: dict[str, LLMSpec] = {}
    allowed = set(LLMSpec.__dataclass_fields__) - {"key"}
    for key, entry in (data.get("models") or {}).items():
        unknown = set(entry) - allowed
        if unknown or "source" not in entry:
            raise RegistryError(
                f"{path}: model {key!r} needs a 'source'"
                + (f" and has unknown fields {sorted(unknown)}" if unknown else "")
            )
        models[key] = LLMSpec(key=key, **entry)
    if not models:
        raise RegistryError(f"{path} lists no [models.*] entry")
    default = data.get("default") or next(iter(models))
    if default not in models:
        raise RegistryError(f"{path}: default {default!r} is not one of the models")
    return LLMRegistry(default=default, models=models)
