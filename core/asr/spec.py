"""What one ASR model is: the fields of a registry entry, and what follows from them.

Its own module so that the backends, the memory estimate and the planner can name it
without importing the registry file's reader (nor, through it, every backend).
"""

from __future__ import annotations

from core.languages import language_key

from dataclasses import dataclass

# The weights' dtype a run or an entry may ask for; "auto" lets core.asr.dtype choose.
DTYPES = ("auto", "float32", "bfloat16")
ANY_LANGUAGE = "*"


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
    dtype: str = "auto"  # weights' dtype (transformers only); a run's --dtype wins over it
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
        language = language_key(language)
        return language is None or ANY_LANGUAGE in self.languages or language in self.languages
