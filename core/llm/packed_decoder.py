"""Fast CPU decoding for Llama-family chat models: packed weights and a lean forward.

The fallback engine since issue 30: :mod:`core.llm.onnx_engine` (onnxruntime-genai) decodes
faster and is used wherever its builder handles the model; this decoder stays for models or
set-ups it cannot build (``ERT_LLM_ONNX=0`` selects it), and it is the closer of the two to
fp32 (BENCHMARKS.md, "Chat engine").

Why (``python -m bench llm``, BENCHMARKS.md): for a 135M model, ``generate``
spends more time in Python than in arithmetic (the transformers forward alone
costs ~8 ms a token here in module calls, mask and cache bookkeeping), and
fp32 weights make every token read ~540 MB of memory. :class:`FastDecoder`
runs the same network as a flat loop of tensor ops over a preallocated KV
cache, q/k/v and gate/up fused, with every projection packed for torch's
weight-only CPU kernels:

* **int4, groups of 32**, when that reproduces the weights exactly: a Q4_0/Q4_1
  GGUF dequantized to fp32 (the bundled default) is a 16-level grid per group,
  so repacking loses nothing but the bf16 rounding of each group's scale;
* **int8 with a scale per group of 32** when the weights are a dequantized
  Q8_0 (the bundled model's output head), run as two int4 planes;
* **int8 per output row** otherwise (hub checkpoints): the one lossy packing.

The matmuls take bf16 activations (the packed kernels need them); the
residual stream, norms, RoPE, attention and KV cache stay fp32, and the top
logits are recomputed in fp32, so greedy tokens match transformers fp32 at
~98-99 % of positions (llama.cpp on the same GGUF: ~95 %). Packing takes
seconds on a small CPU, so the loader caches it beside the converted weights.
``ERT_LLM_FAST=0`` turns the whole path off.
"""

from __future__ import annotations

from core.files import temporary_sibling
from core.llm.onnx_engine import DecodeResult

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

GROUP = 32
SUPPORTED_ARCHS = {"LlamaForCausalLM", "Qwen2ForCausalLM"}
STATIC_ROPE_TYPES = {"default", "linear", "llama3"}
MAX_ROPE_POSITIONS = 32768
REFINE_TOP = 8
PACK_FORMAT = "1"
# One-token steps are ~150 tiny matmuls. Off the main thread (stream_chat's worker,
# Streamlit's script threads) a second OpenMP thread made them slower, not faster
# (2 threads ~40 tok/s, 1 thread ~50-60 on 2 cores; probably libgomp's short spin-wait
# once more OpenMP threads exist than cores). Under OpenMP this is per calling thread.
DECODE_THREADS = 1
Int4Plane = tuple[torch.Tensor, torch.Tensor]  # packed weight, (scale, zero) per group


def fast_enabled() -> bool:
    """``ERT_LLM_FAST=0`` (or ``false``/``no``/``off``) selects plain ``generate``."""
    return os.environ.get("ERT_LLM_FAST", "1").strip().lower() not in {"0", "false", "no", "off"}


@dataclass
class PackedLinear:
    """``y = x @ W.T + b`` with W packed for torch's CPU weight-only kernels (bf16 in).

    ``int4``: one 4-bit plane, a scale and offset per group of 32 inputs.
    ``int8g``: 8-bit weights with a scale per group of 32 (GGUF Q8_0), run as
    two 4-bit planes (high and low nibble): faster than torch's int8 kernel
    and exact, where that kernel allows only one scale per row.
    ``int8``: 8-bit weights, one scale per output row (the lossy fallback).
    """

    kind: str
    weight: torch.Tensor
    scales: torch.Tensor
    bias: torch.Tensor | None = None
    low: Int4Plane | None = None  # int8g's low-nibble plane

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "int8":
            y = torch.ops.aten._weight_int8pack_mm(x, self.weight, self.scales)
        else:
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(x, self.weight, GROUP, self.scales)
        if self.low is not None:
            low_weight, low_scales = self.low
            low = torch.ops.aten._weight_int4pack_mm_for_cpu(x, low_weight, GROUP, low_scales)
            y = y.float().add_(low)
        return y if self.bias is None else y + self.bias

    @property
    def nbytes(self) -> int:
        parts = (self.weight, self.scales, self.bias, *(self.low or ()))
        return sum(t.numel() * t.element_size() for t in parts if t is not None)


def _pack_int4(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> Int4Plane:
    """torch's CPU int4 layout; q is (N, K) in 0..15 and w = (q - 8) * scale + zero per group."""
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.to(torch.int32), 1)
    scales = torch.cat([scale, zero], -1).transpose(0, 1).contiguous().to(torch.bfloat16)
    return packed, scales


def _on_grid(groups: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
    """(q, step, lo) if every group of weights is lo + q * step with q in 0..15, else None."""
    lo = groups.amin(-1, keepdim=True)
    step = (groups.amax(-1, keepdim=True) - lo) / 15
    q = ((groups - lo) / step.clamp(min=torch.finfo(torch.float32).tiny)).round_().clamp_(0, 15)
    # Off-grid weights miss by up to half a step; on-grid ones only by float rounding.
    miss = (q * step).add_(lo).sub_(groups).abs_().amax(-1, keepdim=True)
    return None if bool((miss > step * 1e-3).any()) else (q, step, lo)


def _int4_exact(w: torch.Tensor) -> PackedLinear | None:
    """Pack as int4 (asymmetric, groups of 32) only if the weights already lie on that grid."""
    n, k = w.shape
    if k % GROUP:
        return None
    groups = w.reshape(n, k // GROUP, GROUP)
    if _on_grid(groups[:64]) is None:  # cheap early "no" for 8-bit or float weights
        return None
    fit = _on_grid(groups)
    if fit is None:
        return None
    q, step, lo = fit
    return PackedLinear("int4", *_pack_int4(q.reshape(n, k), step, lo + 8 * step))


def _on_int8_grid(groups: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
    """(q, d) if every group of weights is d * q with q in -127..127, else None."""
    d = groups.abs().amax(-1, keepdim=True) / 127
    q = (groups / d.clamp(min=torch.finfo(torch.float32).tiny)).round_().clamp_(-127, 127)
    miss = (q * d).sub_(groups).abs_().amax(-1, keepdim=True)
    return None if bool((miss > d * 1e-3).any()) else (q, d)


def _int8_groups_exact(w: torch.Tensor) -> PackedLinear | None:
    """Pack GGUF Q8_0-style weights (d * q, |q| <= 127, d per group of 32) exactly."""
    n, k = w.shape
    if k % GROUP:
        return None
    groups = w.reshape(n, k // GROUP, GROUP)
    if _on_int8_grid(groups[:64]) is None:
        return None
    fit = _on_int8_grid(groups)
    if fit is None:
        return None
    q, d = fit
    u = (q + 128).reshape(n, k)  # 1..255 = 16 * high + low
    high, low = torch.div(u, 16, rounding_mode="floor"), u.remainder(16)
    zero = torch.zeros_like(d)
    weight, scales = _pack_int4(high, 16 * d, zero)  # (high - 8) * 16d = 16d * high - 128d
    return PackedLinear("int8g", weight, scales, low=_pack_int4(low, d, 8 * d))


def _int8_rows(w: torch.Tensor) -> PackedLinear:
    scale = w.abs().amax(1).clamp(min=1e-12) / 127
    q = (w / scale[:, None]).round_().clamp_(-127, 127).to(torch.int8)
    return PackedLinear("int8", q.contiguous(), scale.to(torch.bfloat16))


def pack_linear(weight: torch.Tensor, bias: torch.Tensor | None = None) -> PackedLinear:
    """Exact int4 or grouped int8 when the weights allow it, else int8 per output row."""
    w = weight.detach().float()
    packed = _int4_exact(w) or _int8_groups_exact(w) or _int8_rows(w)
    packed.bias = None if bias is None else bias.detach().to(torch.bfloat16)
    return packed


def _interleave_rope(w: torch.Tensor, heads: int, head_dim: int) -> torch.Tensor:
    """Reorder each head's rows from RoPE's half-split layout to (even, odd) pairs.

    Applied to both q and k it leaves every q.k product unchanged, and lets
    RoPE be one complex multiply instead of slicing and concatenating halves.
    """
    half = head_dim // 2
    order = torch.stack([torch.arange(half), torch.arange(half) + half], -1).reshape(-1)
    rows = w.reshape(heads, head_dim, *w.shape[1:])[:, order]
    return rows.reshape(w.shape)


@dataclass
class _Layer:
    attn_norm: torch.Tensor
    qkv: PackedLinear
    out: PackedLinear
    mlp_norm: torch.Tensor
    gate_up: PackedLinear
    down: PackedLinear


def _config_reason(arch: str, get: Callable[[str, Any], Any]) -> str | None:
    """Why a model of ``arch`` with this config (``get(name, default)``) cannot run here."""
    if arch not in SUPPORTED_ARCHS:
        return f"architecture {arch} is not one of {sorted(SUPPORTED_ARCHS)}"
    if get("hidden_act", "silu") != "silu" or get("mlp_bias", False):
        return "the MLP is not a bias-free SiLU MLP"
    rope = (get("rope_parameters", None) or {}).get("rope_type", "default")
    if rope not in STATIC_ROPE_TYPES:
        return f"RoPE type {rope!r} depends on the sequence length"
    if get("use_sliding_window", False):
        return "sliding-window attention"
    return None


def unsupported_reason(model: Any) -> str | None:
    """Why :class:`FastDecoder` cannot run ``model``, or ``None`` when it can."""
    arch = type(model).__name__
    if arch in SUPPORTED_ARCHS and next(model.parameters()).device.type != "cpu":
        return "the model is not on the CPU"
    return _config_reason(arch, lambda name, default: getattr(model.config, name, default))


def _packed_projections(model: Any) -> dict[str, PackedLinear]:
    """Every projection of ``model`` packed, q/k/v and gate/up fused: ``"3.qkv"``, ``"lm_head"``."""
    cfg = model.config
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    packed = {"lm_head": pack_linear(model.lm_head.weight)}
    for i, layer in enumerate(model.model.layers):
        att, mlp = layer.self_attn, layer.mlp
        q, k, v = att.q_proj, att.k_proj, att.v_proj
        bias = None
        if q.bias is not None:
            bias = torch.cat([_interleave_rope(q.bias.detach(), heads, head_dim),
                              _interleave_rope(k.bias.detach(), kv_heads, head_dim),
                              v.bias.detach()])
        packed[f"{i}.qkv"] = pack_linear(torch.cat([
            _interleave_rope(q.weight.detach(), heads, head_dim),
            _interleave_rope(k.weight.detach(), kv_heads, head_dim), v.weight.detach()]), bias)
        packed[f"{i}.out"] = pack_linear(att.o_proj.weight, att.o_proj.bias)
        packed[f"{i}.gate_up"] = pack_linear(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]))
        packed[f"{i}.down"] = pack_linear(mlp.down_proj.weight)
    return packed


_PARTS = ("weight", "scales", "bias", "low_weight", "low_scales")


def save_packed(packed: dict[str, PackedLinear], path: Path) -> None:
    """Write packed projections as safetensors (atomically), tagged with torch's version."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for name, p in packed.items():
        low = p.low or (None, None)
        for part, tensor in zip(_PARTS, (p.weight, p.scales, p.bias, *low), strict=True):
            if tensor is not None:
                tensors[f"{name}.{part}"] = tensor.contiguous()
    meta = {"format": PACK_FORMAT, "torch": torch.__version__,
            "kinds": json.dumps({name: p.kind for name, p in packed.items()})}
    tmp = temporary_sibling(path)
    try:
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_packed(path: Path) -> dict[str, PackedLinear] | None:
    """Packed projections saved by :func:`save_packed`; None if absent, stale or unreadable."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            if meta.get("format") != PACK_FORMAT or meta.get("torch") != torch.__version__:
                return None  # the packed layout belongs to one torch version
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
            kinds = json.loads(meta["kinds"])
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError):
        return None
    packed = {}
    for name, kind in kinds.items():
        part = {p: tensors.get(f"{name}.{p}") for p in _PARTS}
        low = part["low_weight"]
        packed[name] = PackedLinear(kind, part["weight"], part["scales"], part["bias"],
                                    None if low is None else (low, part["low_scales"]))
    return packed


class FastDecoder:
    """The model's forward as a flat op loop over packed weights (CPU, batch of one)."""

    def __init__(self, model: Any, packed: dict[str, PackedLinear] | None = None) -> None:
        cfg = model.config
        inner = model.model
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        positions = min(int(cfg.max_position_embeddings), MAX_ROPE_POSITIONS)
        with torch.no_grad():
            cos, sin = inner.rotary_emb(inner.embed_tokens.weight[:1].float(),
                                        torch.arange(positions)[None])
        half = head_dim // 2
        # Shared with the model, not copied: input embeddings and fp32 output rows.
        self._setup(
            cfg.num_attention_heads, cfg.num_key_value_heads, head_dim, cfg.hidden_size,
            float(cfg.rms_norm_eps), inner.embed_tokens.weight.detach().float(),
            model.lm_head.weight.detach().float(), inner.norm.weight.detach().float(),
            [(layer.input_layernorm.weight.detach().float(),
              layer.post_attention_layernorm.weight.detach().float()) for layer in inner.layers],
            torch.complex(cos[0, :, :half].float(), sin[0, :, :half].float()),
            model.generation_config.eos_token_id, getattr(model.generation_config, "top_k", None),
            packed or _packed_projections(model))

    def _setup(self, heads: int, kv_heads: int, head_dim: int, hidden: int, eps: float,
               embed: torch.Tensor, head_rows: torch.Tensor, norm: torch.Tensor,
               norms: list[tuple[torch.Tensor, torch.Tensor]], rope: torch.Tensor,
               eos: int | list[int] | None, top_k: int | None,
               packed: dict[str, PackedLinear]) -> None:
        self.heads, self.kv_heads, self.head_dim, self.hidden = heads, kv_heads, head_dim, hidden
        self.eps = eps
        self.max_positions = rope.shape[0]
        self.packed = packed
        self.embed, self.head_rows, self.norm = embed, head_rows, norm
        self.lm_head = self.packed["lm_head"]
        self.layers = [
            _Layer(attn_norm=attn_norm, qkv=self.packed[f"{i}.qkv"], out=self.packed[f"{i}.out"],
                   mlp_norm=mlp_norm, gate_up=self.packed[f"{i}.gate_up"],
                   down=self.packed[f"{i}.down"])
            for i, (attn_norm, mlp_norm) in enumerate(norms)]
        self.rope = rope
        self.eos_ids = {eos} if isinstance(eos, int) else set(eos or [])
        self.top_k = top_k  # the model's sampling default, as generate would read it

    @classmethod
    def from_folder(cls, folder: Path, packed: dict[str, PackedLinear]) -> FastDecoder | None:
        """The decoder straight from a saved folder and its packed projections, without
        building transformers' model (importing it costs seconds on a small CPU).

        Reads ``config.json``, ``generation_config.json`` and, from the safetensors, only
        the embeddings and norms. ``None`` where the folder is not one this can read
        (sharded weights, RoPE other than the default, an unsupported architecture).
        """
        from safetensors import SafetensorError, safe_open

        try:
            cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            gen_file = folder / "generation_config.json"
            gen = json.loads(gen_file.read_text(encoding="utf-8")) if gen_file.exists() else {}
            arch = (cfg.get("architectures") or [""])[0]
            rope = cfg.get("rope_parameters") or {}
            if _config_reason(arch, cfg.get) or rope.get("rope_type", "default") != "default" \
                    or cfg.get("rope_scaling") or cfg.get("partial_rotary_factor", 1.0) != 1.0:
                return None
            heads, layers = int(cfg["num_attention_heads"]), int(cfg["num_hidden_layers"])
            head_dim = int(cfg.get("head_dim") or cfg["hidden_size"] // heads)
            theta = float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0)))
            with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
                def tensor(name: str) -> torch.Tensor:
                    return handle.get_tensor(name).float()

                embed = tensor("model.embed_tokens.weight")
                head_rows = embed if cfg.get("tie_word_embeddings") else tensor("lm_head.weight")
                norms = [(tensor(f"model.layers.{i}.input_layernorm.weight"),
                          tensor(f"model.layers.{i}.post_attention_layernorm.weight"))
                         for i in range(layers)]
                norm = tensor("model.norm.weight")
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError):
            return None
        # transformers' default RoPE: inv_freq = theta^(-2i/d), angle = position * inv_freq
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float()
                                    / head_dim))
        positions = min(int(cfg["max_position_embeddings"]), MAX_ROPE_POSITIONS)
        angles = torch.arange(positions).float()[:, None] * inv_freq[None]
        decoder = cls.__new__(cls)
        decoder._setup(heads, int(cfg["num_key_value_heads"]), head_dim, int(cfg["hidden_size"]),
                       float(cfg["rms_norm_eps"]), embed, head_rows, norm, norms,
                       torch.complex(angles.cos(), angles.sin()),
                       gen.get("eos_token_id", cfg.get("eos_token_id")), gen.get("top_k"),
                       packed)
        return decoder

    @property
    def nbytes(self) -> int:
        """Memory added to the model's own: the packed projections and the RoPE table."""
        return sum(p.nbytes for p in self.packed.values()) + self.rope.numel() * 8

    def new_cache(self, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        shape = (self.kv_heads, length, self.head_dim)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in self.layers]

    def forward(self, ids: torch.Tensor, pos: int, cache: list) -> torch.Tensor:
        """Logits (fp32) of the last of ``ids`` (1-D), placed at ``pos``; fills ``cache``."""
        t = ids.shape[0]
        if t > 1 and pos:
            raise ValueError("a multi-token step must start at position 0 (causal mask)")
        h, kv, d, dim = self.heads, self.kv_heads, self.head_dim, self.hidden
        n_qk = (h + kv) * d
        bf16 = torch.bfloat16
        rope = self.rope[pos:pos + t, None]
        x = self.embed[ids]
        for layer, (k_cache, v_cache) in zip(self.layers, cache, strict=True):
            a = F.rms_norm(x, (dim,), layer.attn_norm, self.eps).to(bf16)
            qkv = layer.qkv(a).float()
            qk = torch.view_as_complex(qkv[:, :n_qk].reshape(t, h + kv, d // 2, 2))
            qk = torch.view_as_real(qk * rope).reshape(t, h + kv, d)
            k_cache[:, pos:pos + t] = qk[:, h:].transpose(0, 1)
            v_cache[:, pos:pos + t] = qkv[:, n_qk:].reshape(t, kv, d).transpose(0, 1)
            att = F.scaled_dot_product_attention(
                qk[:, :h].transpose(0, 1)[None], k_cache[None, :, :pos + t],
                v_cache[None, :, :pos + t], is_causal=t > 1, enable_gqa=h != kv)
            x.add_(layer.out(att[0].transpose(0, 1).reshape(t, h * d).to(bf16)))
            a = F.rms_norm(x, (dim,), layer.mlp_norm, self.eps).to(bf16)
            gate, up = layer.gate_up(a).float().chunk(2, -1)
            x.add_(layer.down((F.silu(gate) * up).to(bf16)))
        last = F.rms_norm(x[-1:], (dim,), self.norm, self.eps)
        logits = self.lm_head(last.to(bf16)).float()
        # bf16 outputs are off by ~0.05; redo the leading candidates in fp32 so that
        # greedy picks between near-tied tokens as the fp32 model does.
        top = logits.topk(REFINE_TOP, -1).indices[0]
        logits[0, top] = self.head_rows[top] @ last[0]
        return logits

    def generate(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        processors: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        do_sample: bool = False,
        min_new_tokens: int = 0,
        should_stop: Callable[[], bool] = lambda: False,
        on_token: Callable[[torch.Tensor], None] = lambda tok: None,
    ) -> DecodeResult:
        """Decode up to ``max_new_tokens`` after ``input_ids`` (shape 1 x T), like ``generate``.

        ``processors`` (:func:`core.llm.generate.logits_processors`: repetition penalty,
        temperature, top-k/top-p) are applied as ``generate`` applies them.
        """
        prompt = input_ids.reshape(-1)
        total = min(prompt.numel() + max_new_tokens, self.max_positions)
        ids = torch.empty(total, dtype=torch.long)
        ids[:prompt.numel()] = prompt
        cache = self.new_cache(total)
        eos = torch.tensor(sorted(self.eos_ids), dtype=torch.long)
        started = time.perf_counter()
        prefill = 0.0
        n, pos, step = 0, prompt.numel(), prompt
        threads = torch.get_num_threads()
        try:
            with torch.inference_mode():
                while pos < total and not should_stop():
                    if n == 1:  # prompt done: its large matmuls used every thread
                        torch.set_num_threads(min(threads, DECODE_THREADS))
                    logits = self.forward(step, pos - step.numel(), cache)
                    if processors is not None:
                        logits = processors(ids[None, :pos], logits)
                    if n < min_new_tokens and eos.numel():
                        logits[:, eos] = -float("inf")
                    if do_sample:
                        token = torch.multinomial(F.softmax(logits, -1), 1)[0]
                    else:
                        token = logits.argmax(-1)
                    ids[pos] = token
                    pos, n, step = pos + 1, n + 1, token
                    if n == 1:
                        prefill = time.perf_counter() - started
                    on_token(token)
                    if int(token) in self.eos_ids:
                        break
        finally:
            torch.set_num_threads(threads)
        return DecodeResult(n, prefill, time.perf_counter() - started - prefill)


def optimize_for_cpu(model: Any, cache_file: Path | None = None) -> FastDecoder | None:
    """A :class:`FastDecoder` for ``model``, or ``None`` (disabled or unsupported: use generate).

    Packing takes a second or more on a small CPU, so with ``cache_file`` the
    packed projections are saved on first use and read back on later loads.
    """
    if not fast_enabled() or unsupported_reason(model) is not None:
        return None
    packed = load_packed(cache_file) if cache_file and cache_file.exists() else None
    decoder = FastDecoder(model, packed)
    if cache_file and packed is None:
        with contextlib.suppress(OSError):  # a read-only cache only costs the next load time
            save_packed(decoder.packed, cache_file)
    return decoder
