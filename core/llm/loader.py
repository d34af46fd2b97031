"""Loading chat models: GGUF dequantized once and cached, lazy, low-memory.

Dequantizing the bundled GGUF takes ~20-30 s on a small CPU, so the result is
written once as safetensors under ``.ert/cache/llm/`` and later loads read
that folder (well under a second for the 135M default).
"""

from __future__ import annotations

from core import bundled, paths, threads
from core.devices import is_cpu, is_cuda
from core.files import temporary_sibling
from core.hub import ModelUnavailableError, friendly_hub_errors
from core.llm.registry import LLMSpec

import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.llm.onnx_engine import OnnxDecoder
    from core.llm.packed_decoder import FastDecoder

CONVERTED_MARKER = "ert-converted.json"
PACKED_FILE = "ert-packed.safetensors"


@dataclass
class LoadedLLM:
    """A model ready to generate. ``lock`` serializes generation on it.

    On the CPU, ``onnx`` is the onnxruntime-genai engine (:mod:`core.llm.onnx_engine`)
    when its builder handles the model, else ``fast`` the packed torch decoder
    (:mod:`core.llm.packed_decoder`) when that does; with neither, ``model.generate`` is used.
    ``model`` is ``None`` when only an engine was loaded (``load_llm(..., need_model=False)``).
    """

    spec: LLMSpec
    model: Any
    tokenizer: Any
    device: str
    dtype: str
    load_seconds: float
    weights_dir: str
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    fast: FastDecoder | None = field(default=None, repr=False)
    onnx: OnnxDecoder | None = field(default=None, repr=False)

    @property
    def engine(self) -> str:
        """How tokens are produced, for display and run manifests."""
        if self.onnx is not None:
            return f"onnxruntime-genai ({self.onnx.precision} ONNX, {self.onnx.threads} thr)"
        return "ert-fast (int4/int8 packed, bf16 matmuls)" if self.fast else "transformers generate"


def _cpu_only_torch() -> bool:
    """Whether the installed torch is a CPU build, from its ``torch/version.py`` (``cuda`` and
    ``hip`` None) read without importing torch: every page asks (the sidebar's GPU toggle),
    and importing torch took seconds of a page's first open (issue 27)."""
    import importlib.util
    import runpy

    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return False  # let the import below say what is wrong
    try:
        version = runpy.run_path(str(Path(spec.origin).with_name("version.py")))
    except (OSError, SyntaxError):
        return False
    return version.get("cuda") is None and version.get("hip") is None


def gpu_unavailable_reason() -> str | None:
    """Why GPU mode cannot be used here, or ``None`` when it can."""
    if _cpu_only_torch():
        return "this torch build has no CUDA support (CPU build)"
    import torch

    if not torch.backends.cuda.is_built():
        return "this torch build has no CUDA support (CPU build)"
    if not torch.cuda.is_available():
        return "no CUDA device is visible to torch"
    return None


def _source_dir(spec: LLMSpec) -> str:
    if spec.is_bundled:
        return str(bundled.locate(spec.source.split(":", 1)[1]))
    return os.path.expanduser(spec.source) if os.path.exists(os.path.expanduser(spec.source)) \
        else spec.source


def converted_dir(spec: LLMSpec) -> Path:
    """Cache folder for a GGUF model's dequantized weights, keyed by the file's identity."""
    source = _source_dir(spec)
    gguf = Path(source) / str(spec.gguf_file)
    ident = f"{gguf.stat().st_size}-{int(gguf.stat().st_mtime)}" if gguf.exists() else "hub"
    return paths.cache_dir("llm") / f"{spec.key}-{ident}"


def _convert_gguf(spec: LLMSpec, source: str, target: Path) -> None:
    """Dequantize a GGUF checkpoint once and save it as safetensors (atomic rename)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = temporary_sibling(target)
    with friendly_hub_errors(spec.source):
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=spec.gguf_file,
                                                  revision=spec.revision)
        model = AutoModelForCausalLM.from_pretrained(
            source, gguf_file=spec.gguf_file, revision=spec.revision, low_cpu_mem_usage=True)
    # The GGUF quantizer marks the model unserializable; the weights are plain
    # dequantized tensors by now, so drop the marker and save them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / CONVERTED_MARKER).write_text(json.dumps(
        {"source": spec.source, "gguf_file": spec.gguf_file, "converted_at": time.time()}))
    del model
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def needs_conversion(spec: LLMSpec) -> bool:
    """Whether the next load first dequantizes a GGUF file (tens of seconds, once)."""
    try:
        return bool(spec.gguf_file) and not (converted_dir(spec) / CONVERTED_MARKER).exists()
    except bundled.BundledModelError:
        return False  # the load itself says why the model is unavailable


def _onnx_source(spec: LLMSpec) -> Path | None:
    """The local folder the ONNX engine is built from (ERT's converted weights or the
    user's checkpoint folder), or ``None`` for a hub id or with ``ERT_LLM_FAST=0``."""
    from core.llm import packed_decoder

    try:
        folder = converted_dir(spec) if spec.gguf_file else Path(_source_dir(spec))
    except (bundled.BundledModelError, OSError):
        return None
    return folder if packed_decoder.fast_enabled() and folder.is_dir() else None


def first_use_note(spec: LLMSpec, device: str = "cpu") -> str | None:
    """The one-time steps the next load of ``spec`` runs, for a progress message
    (``None`` when the caches are warm): the GGUF conversion, the ONNX engine's build."""
    from core.llm import onnx_engine, packed_decoder

    steps = []
    converting = needs_conversion(spec)
    if converting:
        steps.append("converting it to safetensors (about 30 s on two cores)")
    if is_cpu(device) and onnx_engine.installed() and packed_decoder.fast_enabled():
        folder = _onnx_source(spec)
        if converting or (folder is not None and onnx_engine.needs_build(folder)):
            steps.append(f"building its {onnx_engine.PRECISION} ONNX engine "
                         "(about 20 s on two cores)")
    if not steps:
        return None
    return f"First use of {spec.display}: " + ", then ".join(steps) + " — once."


def quiet_progress_bars() -> None:
    """No transformers / hub progress bars in this process (``ert chat`` prints its answer
    on stdout; "Loading weights" bars beside it read as output)."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when transformers is imported
    os.environ["TQDM_DISABLE"] = "1"  # the GGUF conversion's own tqdm bar
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def weights_dir(spec: LLMSpec) -> str:
    """Where ``from_pretrained`` should read: converted cache, local folder or hub id."""
    source = _source_dir(spec)
    if not spec.gguf_file:
        return source
    target = converted_dir(spec)
    if not (target / CONVERTED_MARKER).exists():
        _convert_gguf(spec, source, target)
    return str(target)


def _load_packed_only(spec: LLMSpec, where: str, started: float) -> LoadedLLM | None:
    """The ONNX engine (or else the packed decoder) and a plain tokenizer read from the
    model's folder, without importing transformers; ``None`` where a part is missing (then
    the full load runs, and writes the packed weights for next time)."""
    from core.llm import onnx_engine, packed_decoder
    from core.llm.tokenizer import ChatTokenizer

    folder = Path(where)
    source = _onnx_source(spec)
    if source is not None and (tokenizer := ChatTokenizer.from_folder(folder)) is not None \
            and (onnx := onnx_engine.load(source)) is not None:
        return LoadedLLM(spec=spec, model=None, tokenizer=tokenizer, device="cpu",
                         dtype=onnx.precision, load_seconds=time.perf_counter() - started,
                         weights_dir=where, onnx=onnx)
    if not spec.gguf_file or not packed_decoder.fast_enabled() \
            or not (folder / PACKED_FILE).exists():
        return None
    tokenizer = ChatTokenizer.from_folder(folder)
    packed = packed_decoder.load_packed(folder / PACKED_FILE) if tokenizer is not None else None
    fast = packed_decoder.FastDecoder.from_folder(folder, packed) if packed is not None else None
    if fast is None:
        return None
    return LoadedLLM(spec=spec, model=None, tokenizer=tokenizer, device="cpu", dtype="float32",
                     load_seconds=time.perf_counter() - started, weights_dir=where, fast=fast)


def load_llm(spec: LLMSpec, device: str = "cpu", need_model: bool = True) -> LoadedLLM:
    """Load a chat model on ``device`` ("cpu" or "cuda"); half precision on the GPU.

    On the CPU the ONNX engine is built on first use (:func:`first_use_note` says so).
    ``need_model=False`` (``ert chat``, the page): load only the engine and the tokenizer
    files where they can be read; no transformers import, no fp32 model (a few seconds
    and ~540 MB less for the default).
    """
    threads.apply_torch()
    if is_cuda(device) and (reason := gpu_unavailable_reason()):
        raise ModelUnavailableError(f"GPU mode is not available: {reason}")
    started = time.perf_counter()
    try:
        where = weights_dir(spec)
    except bundled.BundledModelError as exc:
        raise ModelUnavailableError(str(exc)) from exc
    if not need_model and is_cpu(device) \
            and (lean := _load_packed_only(spec, where, started)) is not None:
        return lean
    from core.llm import packed_decoder

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if is_cuda(device):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = torch.float32
    with friendly_hub_errors(spec.source):
        tokenizer = AutoTokenizer.from_pretrained(
            where, use_fast=True, revision=None if spec.gguf_file else spec.revision,
            trust_remote_code=spec.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            where, dtype=dtype, low_cpu_mem_usage=True,
            revision=None if spec.gguf_file else spec.revision,
            trust_remote_code=spec.trust_remote_code)
    model.eval()
    if is_cuda(device):
        model.to(device)
    fast = onnx = None
    if is_cpu(device):
        from core.llm import onnx_engine

        source = _onnx_source(spec)
        onnx = onnx_engine.load(source) if source is not None else None
        if onnx is None:  # packed weights are cached beside ERT's own converted weights only
            packed_file = Path(where) / PACKED_FILE if spec.gguf_file else None
            fast = packed_decoder.optimize_for_cpu(model, packed_file)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedLLM(spec=spec, model=model, tokenizer=tokenizer, device=device,
                     dtype=str(dtype).replace("torch.", ""),
                     load_seconds=time.perf_counter() - started, weights_dir=where, fast=fast,
                     onnx=onnx)
