"""How much memory an ASR model needs, derived rather than typed in.

need = weights + activation allowance, where

* weights = parameter count × bytes per parameter of the dtype the backend
  loads (fp32 for transformers on CPU, fp16/bf16 on GPU, int8 for
  faster-whisper on CPU, fp16 for it on GPU);
* the parameter count is exact when the model's ``config.json`` is at hand (a
  local folder or the hub cache): the model is built on the ``meta`` device,
  which allocates nothing, and its parameters are counted. Otherwise it comes
  from :data:`PUBLISHED_PARAMS_M`, the counts published with the models;
* the activation allowance (features, encoder states, KV cache, runtime
  buffers) was measured with ``scripts/measure_asr_activations.py``: peak RSS
  minus the loaded RSS while transcribing a batch of eight 30 s clips with
  greedy decoding (results in :data:`MEASURED_ACTIVATIONS_GB`). It is modelled
  as ``ACTIVATION_FLOOR_GB + ACTIVATION_FRACTION × weights``.

The figures exclude the interpreter and libraries themselves (torch alone is
~0.4 GB of RSS), which the workbench pays once whatever the model.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.asr.registry import AsrModelSpec

GB = 1024**3
BYTES_PER_DTYPE = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}

# Published parameter counts (millions), matched against the words of a model's
# key and source; the last row of a family is its default (the largest usual
# size, so an unknown model is over- rather than under-estimated).
PUBLISHED_PARAMS_M: dict[str, tuple[tuple[str, float], ...]] = {
    "whisper": (("tiny", 39), ("base", 74), ("small", 244), ("medium", 769),
                ("large", 1550), ("", 1550)),
    # The French fine-tunes are all wav2vec2-large (XLSR-53 or VoxPopuli, 315M).
    "wav2vec2": (("base", 95), ("large", 315), ("", 315)),
    "seamless": (("medium", 1200), ("large", 2300), ("", 2300)),
    # Raw counts, per-layer embeddings included (the "effective" E2B/E4B are less).
    "gemma3n": (("e2b", 5000), ("e4b", 8000), ("", 8000)),
}

# Peak RSS minus loaded RSS, transcribing 8 × 30 s clips (greedy, 128 new tokens
# at most) on 2 CPU cores; random weights at the real architectures' sizes for
# transformers, the bundled models for faster-whisper. See the module docstring.
MEASURED_ACTIVATIONS_GB: dict[str, float] = {}
ACTIVATION_FLOOR_GB = 0.25
ACTIVATION_FRACTION = 0.25
CUDA_CONTEXT_GB = 0.5  # the CUDA context and allocator slack on the GPU (not measured here)


@dataclass(frozen=True)
class MemoryEstimate:
    """One model's memory need on one device, with where the figures came from."""

    params: int
    params_from: str  # "config" | "published" | "registry" | "override"
    dtype: str
    weights_gb: float
    activations_gb: float
    overridden_gb: float | None = None

    @property
    def total_gb(self) -> float:
        if self.overridden_gb is not None:
            return self.overridden_gb
        return self.weights_gb + self.activations_gb


def load_dtype(spec: AsrModelSpec, device: str) -> str:
    """The dtype the backend loads ``spec`` in on ``device`` (mirrors the backends)."""
    gpu = device.startswith("cuda")
    if spec.backend == "faster-whisper":
        return "float16" if gpu else "int8"
    return "bfloat16" if gpu else "float32"


def activation_allowance_gb(weights_gb: float, device: str = "cpu") -> float:
    extra = CUDA_CONTEXT_GB if device.startswith("cuda") else 0.0
    return ACTIVATION_FLOOR_GB + ACTIVATION_FRACTION * weights_gb + extra


def published_params(spec: AsrModelSpec) -> int:
    """The published count that best matches the spec's key and source words."""
    words = set(re.split(r"[^a-z0-9]+", f"{spec.key} {spec.source}".lower()))
    for word, millions in PUBLISHED_PARAMS_M[spec.family]:
        if not word or word in words:
            return int(millions * 1e6)
    raise AssertionError("every family ends with a default row")


def _config_folder(spec: AsrModelSpec) -> Path | None:
    """The folder holding the spec's ``config.json``, without touching the network."""
    if spec.is_bundled or spec.backend == "faster-whisper":
        return None  # CTranslate2 folders carry no transformers config
    local = Path(spec.source).expanduser()
    if local.is_dir():
        return local if (local / "config.json").is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(spec.source, "config.json", revision=spec.revision)
    except Exception:  # an odd id is simply "not cached"
        return None
    return Path(cached).parent if isinstance(cached, str) else None


@functools.lru_cache(maxsize=64)
def params_from_config(folder: Path, family: str) -> int | None:
    """Count the parameters of the model ``folder/config.json`` describes, on ``meta``."""
    try:
        import torch
        import transformers

        config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=False)
        model_class = {
            "whisper": transformers.WhisperForConditionalGeneration,
            "wav2vec2": transformers.AutoModelForCTC,
            "seamless": (transformers.SeamlessM4Tv2ForSpeechToText
                         if config.model_type == "seamless_m4t_v2"
                         else transformers.SeamlessM4TForSpeechToText),
            "gemma3n": transformers.Gemma3nForConditionalGeneration,
        }[family]
        with torch.device("meta"):
            if hasattr(model_class, "from_config"):
                model = model_class.from_config(config)
            else:
                model = model_class._from_config(config)
        return sum(p.numel() for p in model.parameters())
    except Exception:  # e.g. Gemma 3n without timm: use the published count
        return None


def parameter_count(spec: AsrModelSpec) -> tuple[int, str]:
    """The spec's parameter count and its origin (registry, config or published)."""
    if spec.params_millions:
        return int(spec.params_millions * 1e6), "registry"
    folder = _config_folder(spec)
    if folder is not None and (count := params_from_config(folder, spec.family)):
        return count, "config"
    return published_params(spec), "published"


def estimate(spec: AsrModelSpec, device: str = "cpu") -> MemoryEstimate:
    """The memory ``spec`` needs on ``device`` ("cpu" or "cuda")."""
    params, origin = parameter_count(spec)
    dtype = load_dtype(spec, device)
    weights = params * BYTES_PER_DTYPE[dtype] / GB
    override = spec.memory_gb_gpu if device.startswith("cuda") else spec.memory_gb_cpu
    return MemoryEstimate(params=params, params_from="override" if override else origin,
                          dtype=dtype, weights_gb=weights,
                          activations_gb=activation_allowance_gb(weights, device),
                          overridden_gb=override)
