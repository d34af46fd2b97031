"""How much memory an ASR model needs, derived rather than typed in.

need = weights + activation allowance, where

* weights = parameter count × bytes per parameter of the dtype the backend
  loads, as :func:`core.asr.dtype.load_dtype` decides for the load itself
  (transformers: bf16 on a CPU with native bf16, else fp32, bf16/fp16 on GPU;
  faster-whisper: int8 on CPU, fp16 on GPU);
* the parameter count is exact when the model is at hand (a local folder or the
  hub cache): read from its safetensors headers (the shapes of what will be
  loaded, a few KB; no transformers import, which costs the planner ~8 s), else
  from its ``config.json``, the model built on the ``meta`` device, which
  allocates nothing, and its parameters counted. Otherwise it comes from
  :attr:`core.asr.families.Family.published_params_m`, the counts published with the
  models;
* the activation allowance (features, encoder states, KV caches, attention,
  allocator slack) was measured with ``scripts/measure_asr_activations.py``:
  peak RSS minus the loaded RSS while transcribing a batch of eight 30 s
  clips, greedy, at most 128 new tokens (:data:`MEASURED_ACTIVATIONS_GB`). It
  is modelled as ``floor(backend) + fraction(family) × params × compute bytes
  × batch / 8``, the floor being what the backend class declares
  (``activation_floor_gb``, as it declares its load dtypes, ``weight_dtypes``):
  activations are computed in the weights' float dtype (fp32 for int8
  CTranslate2 on the CPU: :func:`compute_bytes`), and grow with the batch. Wav2Vec2 needs far more
  than Whisper per parameter: its CNN runs on the raw 16 kHz waveform. Seamless
  could not be measured here (no weights offline) and uses a documented
  assumption; Gemma 3n was measured with random weights of its real configs.

The figures exclude the interpreter and libraries themselves (torch alone is
~0.4 GB of RSS), which the workbench pays once whatever the model.
"""

from __future__ import annotations

from core import hub
from core.asr.dtype import AUTO, load_dtype
from core.asr.factory import backend_class
from core.asr.families import get_family
from core.devices import is_cuda

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.asr.spec import AsrModelSpec

GB = 1024**3
BYTES_PER_DTYPE = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}

# Each family's published sizes, activation fraction, per-clip cost and fixed length share
# are declared in core.asr.families (one Family each); their sources are here.
# Gemma 3n's published counts: raw, as transformers loads them, counted on the meta device
# from the checkpoints' configs (tests/asr/data/gemma3n); the model cards round: 5B, 8B.

# Peak RSS minus loaded RSS transcribing 8 × 30 s clips on 2 CPU cores (greedy,
# ≤ 128 new tokens): the bundled int8 models for faster-whisper, random weights at
# the real architectures' sizes for transformers (fp32; Whisper then decodes all
# 128 tokens, an upper bound).
MEASURED_ACTIVATIONS_GB: dict[str, float] = {
    "faster-whisper:tiny.en": 0.54,  # 39M params
    "faster-whisper:base": 0.71,  # 74M
    "transformers whisper tiny": 0.32,  # 38M, 0.14 GB fp32 weights
    "transformers whisper base": 0.55,  # 73M, 0.27 GB
    "transformers wav2vec2-large CTC": 5.13,  # 315M, 1.18 GB
}
REFERENCE_BATCH = 8
# Activation fraction (GB per GB of weights in the compute dtype, REFERENCE_BATCH clips):
# Whisper 1.75 fits tiny 0.32 / base 0.55 (and over-covers faster-whisper's); Wav2Vec2 4.4 =
# 5.13 / 1.18; Seamless 1.75 assumed (encoder-decoder on fbank features, like Whisper);
# Gemma 3n 0 (its text decoder adds little: see the per-clip cost).
# Per-clip cost, whatever the model's size, in bf16 compute (fp32: twice): an audio tower
# every size shares. Gemma 3n, measured (bench.gemma3n, random weights of the real configs,
# bf16): on an H200, batch 8 × 128 new tokens, 2.432 GB above E2B's weights and 2.436 above
# E4B's (the allocator's peak): the same for a 5.4 B and a 7.8 B model, so not a fraction of
# the weights (0.15 of them gave 1.51 and 2.18); on the CPU, one clip × 8 tokens, 0.253 and
# 0.299 (RSS). 0.30 a clip covers all four (2.47, 2.47; 0.37, 0.37).
# Clip length (issue 12): activations were measured on 30 s clips; a dataset of 4 s clips
# needs far less. The allowance is scaled by share + (1 - share) × min(clip, 30) / 30, the
# share being what does not shrink with the audio: Whisper pads every window to 30 s but
# decodes fewer tokens (fitted: tiny.en 0.22, base 0.33, small 0.42 on 3–5.5 s clips against
# their 30 s figures: 0.35); a CTC model's CNN and encoder run on the audio itself (0).
# Seamless (0.2) and Gemma 3n (0.5) are assumed (no weights offline). BENCHMARKS.md, "Plans
# against runs".
WINDOW_SECONDS = 30.0
CUDA_CONTEXT_GB = 0.5  # the CUDA context and allocator slack on the GPU (not measured here)


@dataclass(frozen=True)
class MemoryEstimate:
    """One model's memory need on one device, with where the figures came from."""

    params: int
    params_from: str  # "weights" | "config" | "published" | "registry" | "override"
    dtype: str
    batch_size: int
    weights_gb: float
    activations_gb: float
    overridden_gb: float | None = None

    @property
    def total_gb(self) -> float:
        if self.overridden_gb is not None:
            return self.overridden_gb
        return self.weights_gb + self.activations_gb


def compute_bytes(dtype: str) -> int:
    """Bytes per activation value: half precision computes in it; fp32 and int8 (whose
    CTranslate2 kernels dequantize to fp32 on the CPU) in fp32."""
    return 2 if dtype in ("bfloat16", "float16") else 4


def length_factor(family: str, clip_seconds: float | None) -> float:
    """How much of the 30 s-clip allowance clips of ``clip_seconds`` need (1 when unknown)."""
    if clip_seconds is None:
        return 1.0
    share = get_family(family).length_fixed_share
    return share + (1 - share) * min(max(clip_seconds, 0.0), WINDOW_SECONDS) / WINDOW_SECONDS


def activation_allowance_gb(spec: AsrModelSpec, params: int, device: str = "cpu",
                            batch_size: int = REFERENCE_BATCH, dtype: str = AUTO,
                            clip_seconds: float | None = None) -> float:
    """The measured model: (floor (the backend's) + fraction × params × compute bytes × batch
    / 8 + per-clip cost × batch) × :func:`length_factor`; ``dtype`` is the run's request,
    resolved by :func:`load_dtype` as the load resolves it; ``clip_seconds`` the dataset's
    longest clip."""
    gpu = is_cuda(device)
    width = compute_bytes(load_dtype(spec, device, dtype))
    clips = max(1, batch_size)
    family = get_family(spec.family)
    scaled = (family.activation_fraction * params * width / GB * clips / REFERENCE_BATCH
              + family.activation_per_clip_gb * clips * width / 2)
    floor = backend_class(spec.backend).activation_floor_gb
    return ((floor + scaled) * length_factor(spec.family, clip_seconds)
            + (CUDA_CONTEXT_GB if gpu else 0.0))


def published_params(spec: AsrModelSpec) -> int:
    """The published count that best matches the spec's key and source words."""
    words = set(re.split(r"[^a-z0-9]+", f"{spec.key} {spec.source}".lower()))
    for word, millions in get_family(spec.family).published_params_m:
        if not word or word in words:
            return int(millions * 1e6)
    raise AssertionError("every family ends with a default row")


def _config_folder(spec: AsrModelSpec) -> Path | None:
    """The folder holding the spec's ``config.json``, without touching the network."""
    if spec.is_bundled or not backend_class(spec.backend).counts_from_config:
        return None  # e.g. CTranslate2 folders carry no transformers config
    local = Path(spec.source).expanduser()
    if local.is_dir():
        return local if (local / "config.json").is_file() else None
    cached = hub.cached_file(spec.source, "config.json", spec.revision)
    return cached.parent if cached is not None else None


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


SAFETENSORS_FILE, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
HEADER_LIMIT = 100 * 2**20  # a safetensors header larger than this is not one


def params_from_weights(folder: Path) -> int | None:
    """Count the values stored in ``folder``'s safetensors weights from their headers
    alone (persistent buffers included: they are loaded too). None without them."""
    try:
        if (folder / SAFETENSORS_INDEX).is_file():
            index = json.loads((folder / SAFETENSORS_INDEX).read_text())
            files = sorted(set(index["weight_map"].values()))
        elif (folder / SAFETENSORS_FILE).is_file():
            files = [SAFETENSORS_FILE]
        else:
            return None
        total = 0
        for name in files:
            with open(folder / name, "rb") as handle:
                size = int.from_bytes(handle.read(8), "little")
                if not 0 < size < HEADER_LIMIT:
                    return None
                header = json.loads(handle.read(size))
            total += sum(math.prod(entry["shape"]) for key, entry in header.items()
                         if key != "__metadata__")
        return total or None
    except (OSError, ValueError, KeyError, TypeError):  # not readable as safetensors
        return None


def parameter_count(spec: AsrModelSpec) -> tuple[int, str]:
    """The spec's parameter count and its origin (registry, weights, config or
    published)."""
    if spec.params_millions:
        return int(spec.params_millions * 1e6), "registry"
    folder = _config_folder(spec)
    if folder is not None and (count := params_from_weights(folder)):
        return count, "weights"
    if folder is not None and (count := params_from_config(folder, spec.family)):
        return count, "config"
    return published_params(spec), "published"


def estimate(spec: AsrModelSpec, device: str = "cpu", batch_size: int = REFERENCE_BATCH,
             dtype: str = AUTO, clip_seconds: float | None = None) -> MemoryEstimate:
    """The memory ``spec`` needs on ``device`` ("cpu" or "cuda") for batches of ``batch_size``,
    loaded as the run's ``dtype`` ("auto", "float32", "bfloat16") makes it load."""
    backend = backend_class(spec.backend)
    if backend.remote:  # the server holds the model: only a client here
        return MemoryEstimate(params=0, params_from="endpoint", dtype="remote",
                              batch_size=batch_size, weights_gb=0.0,
                              activations_gb=backend.activation_floor_gb)
    params, origin = parameter_count(spec)
    loaded = load_dtype(spec, device, dtype)
    override = spec.memory_gb_gpu if is_cuda(device) else spec.memory_gb_cpu
    return MemoryEstimate(
        params=params, params_from="override" if override else origin, dtype=loaded,
        batch_size=batch_size, weights_gb=params * BYTES_PER_DTYPE[loaded] / GB,
        activations_gb=activation_allowance_gb(spec, params, device, batch_size, dtype,
                                               clip_seconds),
        overridden_gb=override)


def need_gb(spec: AsrModelSpec, device: str = "cpu", batch_size: int = REFERENCE_BATCH,
            dtype: str = AUTO, clip_seconds: float | None = None) -> float:
    """What the planner budgets for ``spec``: weights plus activation allowance, in GB."""
    return estimate(spec, device, batch_size, dtype, clip_seconds).total_gb
