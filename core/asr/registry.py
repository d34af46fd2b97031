"""The ASR model registry, read from ``configs/asr_models.toml`` (a file users edit).

Keys are ``family:variant`` as in the seed evaluation scripts; named batches
group models that are evaluated together. Memory needs are not typed in the
file but derived (:mod:`core.asr.memory`), unless an entry overrides them.
"""

from __future__ import annotations

from core import paths
from core.asr.factory import BACKENDS, backend_class
from core.asr.families import FAMILIES
from core.asr.spec import DTYPES, AsrModelSpec
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
    backend = entry.get("backend", "transformers")
    if backend not in BACKENDS:
        raise RegistryError(f"{path}: model {key!r}: backend must be one of {tuple(BACKENDS)}")
    if entry["family"] not in FAMILIES:
        raise RegistryError(f"{path}: model {key!r}: family must be one of {tuple(FAMILIES)}")
    runs = backend_class(backend)  # what the backend declares it runs and loads in
    if runs.families and entry["family"] not in runs.families:
        raise RegistryError(f"{path}: model {key!r}: {backend} runs "
                            f"{', '.join(runs.families)} models only")
    dtype = entry.get("dtype", "auto")
    if dtype not in DTYPES:
        raise RegistryError(f"{path}: model {key!r}: dtype must be one of {DTYPES}")
    # Backends with fixed compute types (int8/fp16, remote) declare no choices: it would
    # do nothing.
    if dtype != "auto" and dtype not in runs.dtype_choices:
        takes = [name for name in BACKENDS if backend_class(name).dtype_choices]
        raise RegistryError(f"{path}: model {key!r}: dtype applies to {', '.join(takes)} "
                            "models only")
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

