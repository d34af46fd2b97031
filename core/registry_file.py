"""Reading a model registry file (``configs/*.toml``, which users edit), once for all registries.

The ASR and chat-model registries share the file's shape — a ``default`` key and
``[models."key"]`` tables that need a ``source`` — so they share the checks, and one
error type whose messages name the file, the way a user finds the line to fix.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any


class RegistryError(ValueError):
    """A registry file is unreadable, malformed, or names an unknown model."""


def read_registry(path: Path, what: str) -> dict[str, Any]:
    """The parsed file; ``what`` ("ASR model registry") says which one it failed to be."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RegistryError(f"cannot read the {what} {path}: {exc}") from exc


def model_entries(path: Path, data: dict[str, Any], example: str = "[models.*]"
                  ) -> dict[str, dict[str, Any]]:
    """The ``[models.*]`` tables, refused when there is none (``example`` shows the header)."""
    models = data.get("models") or {}
    if not isinstance(models, dict) or not models:
        raise RegistryError(f"{path} lists no {example} entry")
    return models


def check_entry(path: Path, key: str, entry: Any, allowed: Collection[str]) -> None:
    """A model table has a ``source`` and only ``allowed`` fields (a typo is not ignored)."""
    if not isinstance(entry, dict):
        raise RegistryError(f"{path}: model {key!r} must be a table of fields")
    unknown = set(entry) - set(allowed)
    if unknown or "source" not in entry:
        raise RegistryError(
            f"{path}: model {key!r} needs a 'source'"
            + (f" and has unknown fields {sorted(unknown)}" if unknown else ""))


def default_key(path: Path, data: dict[str, Any], models: Collection[str]) -> str:
    """The file's ``default``, else its first model; it must be one of ``models``."""
    default = data.get("default") or next(iter(models))
    if default not in models:
        raise RegistryError(f"{path}: default {default!r} is not one of the models")
    return default
