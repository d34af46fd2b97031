"""The ASR model registry, read from ``configs/asr_models.toml`` (a file users edit).

Keys are ``family:variant`` as in the seed evaluation scripts; named batches
group models that are evaluated together. Memory needs are not typed in the
file but derived (:mod:`core.asr.memory`), unless an entry overrides them.
"""

from __future__ import annotations

from core import paths
from core.asr.factory import BACKENDS
from core.asr.spec import DTYPES, FAMILIES, AsrModelSpec
from core.registry_file import (
    RegistryError,
    check_entry,
    default_key,
    model_entries,
    read_registry,
)

from dataclasses import dataclass
from pathlib import Path

REGISTRY_FILE = "asr_models.toml"
AsrRegistryError = RegistryError  # the one registry error, under the name callers know


@dataclass(frozen=True)
class AsrRegistry:
    default: str
    models: dict[str, AsrModelSpec]
    batches: dict[str, tuple[str, ...]]
    path: Path | None = None

    def get(self, key: str | None = None) -> AsrModelSpec:
        key = key or self.default
        if key not in self.models:
            raise RegistryError(f"unknown ASR model {key!r}; known: {', '.join(self.models)}")
        return self.models[key]

    def batch(self, name: str) -> list[AsrModelSpec]:
        if name not in self.batches:
            raise RegistryError(f"unknown batch {name!r}; known: {', '.join(self.batches)}")
        return [self.models[key] for key in self.batches[name]]


def _spec(path: Path, key: str, entry: dict) -> AsrModelSpec:
    check_entry(path, key, entry, set(AsrModelSpec.__dataclass_fields__) - {"key"})
    entry = dict(entry)
    # A user's entry may stay minimal: the family defaults to the key's prefix.
    prefix = key.split(":", 1)[0]
    entry.setdefault("family", prefix if prefix in FAMILIES else "whisper")
    if str(entry["source"]).startswith("bundled:") or prefix == "faster-whisper":
        entry.setdefault("backend", "faster-whisper")
    if str(entry["source"]).startswith(("http://", "https://")):
        entry.setdefault("backend", "endpoint")
    if entry.get("backend", "transformers") not in BACKENDS:
        raise RegistryError(f"{path}: model {key!r}: backend must be one of {tuple(BACKENDS)}")
    if entry["family"] not in FAMILIES:
        raise RegistryError(f"{path}: model {key!r}: family must be one of {FAMILIES}")
    if entry.get("backend") == "faster-whisper" and entry["family"] != "whisper":
        raise RegistryError(f"{path}: model {key!r}: faster-whisper runs Whisper models only")
    dtype = entry.get("dtype", "auto")
    if dtype not in DTYPES:
        raise RegistryError(f"{path}: model {key!r}: dtype must be one of {DTYPES}")
    # The other backends have fixed compute types (int8/fp16, remote): it would do nothing.
    if dtype != "auto" and entry.get("backend", "transformers") != "transformers":
        raise RegistryError(f"{path}: model {key!r}: dtype applies to transformers models only")
    if "languages" in entry:
        langs = entry["languages"]
        entry["languages"] = (langs,) if isinstance(langs, str) else tuple(langs)
    for name in ("memory_gb_cpu", "memory_gb_gpu", "params_millions"):
        value = entry.get(name)
        if value is not None and (not isinstance(value, int | float) or value <= 0):
            raise RegistryError(f"{path}: model {key!r}: {name} must be a positive number")
    return AsrModelSpec(key=key, **entry)


def load_asr_registry(path: Path | None = None) -> AsrRegistry:
    """Parse the registry, with a message that names the file when it is wrong."""
    path = path or paths.config_file(REGISTRY_FILE)
    data = read_registry(path, "ASR model registry")
    entries = model_entries(path, data, '[models."family:variant"]')
    models = {key: _spec(path, key, entry) for key, entry in entries.items()}
    batches: dict[str, tuple[str, ...]] = {}
    for name, keys in (data.get("batches") or {}).items():
        if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
            raise RegistryError(f"{path}: batch {name!r} must be a list of model keys")
        missing = [k for k in keys if k not in models]
        if missing:
            raise RegistryError(f"{path}: batch {name!r} names unknown models {missing}")
        batches[name] = tuple(keys)
    return AsrRegistry(default=default_key(path, data, models), models=models, batches=batches,
                       path=path)

