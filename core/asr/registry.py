"""The ASR model registry, read from ``configs/asr_models.toml`` (a file users edit).

Keys are ``family:variant`` as in the seed evaluation scripts; named batches
group models that are evaluated together. Memory needs are not typed in the
file but derived (:mod:`core.asr.memory`), unless an entry overrides them.
"""

from __future__ import annotations

from core import paths

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.asr.base import Backend
    from core.asr.memory import MemoryEstimate

REGISTRY_FILE = "asr_models.toml"
BACKENDS = ("transformers", "faster-whisper", "endpoint")
FAMILIES = ("whisper", "wav2vec2", "seamless", "gemma3n")
ANY_LANGUAGE = "*"


class AsrRegistryError(ValueError):
    """The registry file is unreadable, malformed, or names an unknown model."""


@dataclass(frozen=True)
class AsrModelSpec:
    """One ASR model: where its weights are, which backend runs it, what it needs."""

    key: str
    source: str
    backend: str = "transformers"
    family: str = "whisper"
    languages: tuple[str, ...] = (ANY_LANGUAGE,)
    label: str = ""
    revision: str | None = None
    trust_remote_code: bool = False
    memory_gb_cpu: float | None = None  # overrides the derived figure
    memory_gb_gpu: float | None = None
    params_millions: float | None = None  # for the estimate, when no config is at hand
    # backend = "endpoint": ``source`` is the API base URL (".../v1"), the model name the
    # server knows (default: this key) and the variable holding its API key, if any.
    endpoint_model: str | None = None
    api_key_env: str | None = None

    @property
    def is_bundled(self) -> bool:
        return self.source.startswith("bundled:")

    @property
    def bundled_name(self) -> str:
        return self.source.split(":", 1)[1]

    @property
    def display(self) -> str:
        return self.label or self.key

    def supports(self, language: str | None) -> bool:
        """Whether the model transcribes ``language`` ("fr", "fr-FR", "French"); ``None``
        (not known) means yes."""
        from core.metrics import language_key

        language = language_key(language)
        return language is None or ANY_LANGUAGE in self.languages or language in self.languages

    def memory(self, device: str = "cpu", batch_size: int = 8) -> MemoryEstimate:
        """Weights + activation allowance on ``device`` (see :mod:`core.asr.memory`)."""
        from core.asr.memory import estimate

        return estimate(self, device, batch_size)

    def memory_gb(self, device: str = "cpu", batch_size: int = 8) -> float:
        return self.memory(device, batch_size).total_gb


@dataclass(frozen=True)
class AsrRegistry:
    default: str
    models: dict[str, AsrModelSpec]
    batches: dict[str, tuple[str, ...]]
    path: Path | None = None

    def get(self, key: str | None = None) -> AsrModelSpec:
        key = key or self.default
        if key not in self.models:
            raise AsrRegistryError(f"unknown ASR model {key!r}; known: {', '.join(self.models)}")
        return self.models[key]

    def batch(self, name: str) -> list[AsrModelSpec]:
        if name not in self.batches:
            raise AsrRegistryError(f"unknown batch {name!r}; known: {', '.join(self.batches)}")
        return [self.models[key] for key in self.batches[name]]


def _spec(path: Path, key: str, entry: dict) -> AsrModelSpec:
    allowed = set(AsrModelSpec.__dataclass_fields__) - {"key"}
    unknown = set(entry) - allowed
    if unknown or "source" not in entry:
        raise AsrRegistryError(
            f"{path}: model {key!r} needs a 'source'"
            + (f" and has unknown fields {sorted(unknown)}" if unknown else ""))
    entry = dict(entry)
    # A user's entry may stay minimal: the family defaults to the key's prefix.
    prefix = key.split(":", 1)[0]
    entry.setdefault("family", prefix if prefix in FAMILIES else "whisper")
    if str(entry["source"]).startswith("bundled:") or prefix == "faster-whisper":
        entry.setdefault("backend", "faster-whisper")
    if str(entry["source"]).startswith(("http://", "https://")):
        entry.setdefault("backend", "endpoint")
    if entry.get("backend", "transformers") not in BACKENDS:
        raise AsrRegistryError(f"{path}: model {key!r}: backend must be one of {BACKENDS}")
    if entry["family"] not in FAMILIES:
        raise AsrRegistryError(f"{path}: model {key!r}: family must be one of {FAMILIES}")
    if entry.get("backend") == "faster-whisper" and entry["family"] != "whisper":
        raise AsrRegistryError(f"{path}: model {key!r}: faster-whisper runs Whisper models only")
    if "languages" in entry:
        langs = entry["languages"]
        entry["languages"] = (langs,) if isinstance(langs, str) else tuple(langs)
    for name in ("memory_gb_cpu", "memory_gb_gpu", "params_millions"):
        value = entry.get(name)
        if value is not None and (not isinstance(value, int | float) or value <= 0):
            raise AsrRegistryError(f"{path}: model {key!r}: {name} must be a positive number")
    return AsrModelSpec(key=key, **entry)


def load_asr_registry(path: Path | None = None) -> AsrRegistry:
    """Parse the registry, with a message that names the file when it is wrong."""
    path = path or paths.config_file(REGISTRY_FILE)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AsrRegistryError(f"cannot read the ASR model registry {path}: {exc}") from exc
    models = {key: _spec(path, key, entry) for key, entry in (data.get("models") or {}).items()}
    if not models:
        raise AsrRegistryError(f"{path} lists no [models.\"family:variant\"] entry")
    batches: dict[str, tuple[str, ...]] = {}
    for name, keys in (data.get("batches") or {}).items():
        if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
            raise AsrRegistryError(f"{path}: batch {name!r} must be a list of model keys")
        missing = [k for k in keys if k not in models]
        if missing:
            raise AsrRegistryError(f"{path}: batch {name!r} names unknown models {missing}")
        batches[name] = tuple(keys)
    default = data.get("default") or next(iter(models))
    if default not in models:
        raise AsrRegistryError(f"{path}: default {default!r} is not one of the models")
    return AsrRegistry(default=default, models=models, batches=batches, path=path)


def create_backend(spec: AsrModelSpec, device: str = "cpu") -> Backend:
    """The backend that runs ``spec`` on ``device`` ("cpu" or "cuda"), not yet loaded."""
    if spec.backend == "endpoint":
        from core.asr.endpoint_backend import EndpointBackend

        return EndpointBackend(spec, device)
    if spec.backend == "faster-whisper":
        from core.asr.faster_whisper_backend import FasterWhisperBackend

        return FasterWhisperBackend(spec, device)
    from core.asr.transformers_backend import TransformersBackend

    return TransformersBackend(spec, device)
