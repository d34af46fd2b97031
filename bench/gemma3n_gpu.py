"""Gemma 3n on a GPU (issue 17): the tiny model through ERT's GPU path, and the planner's
memory estimate for the real E2B / E4B shapes against what they allocate.

``python3 -m bench.gemma3n_gpu [--out DIR]`` on a GPU machine (no download: the tiny model is
built from a config, the real shapes from ``tests/asr/data/gemma3n`` with random weights).

1. The tiny random Gemma 3n of the tests (``core.asr.tiny_models.build_gemma3n``) loaded by
   ``create_backend(spec, "cuda")`` (bf16, straight to the GPU), a batch of clips of mixed
   lengths (one over 30 s) transcribed: every clip ok, the dtype, and whether the batched
   texts equal one clip at a time.
2. E2B and E4B: the real config built on the GPU in bf16 with random weights; allocated
   weights against ``estimate(spec, "cuda").weights_gb``, then one ``generate`` of
   ``BATCH`` 30 s clips (the prompt laid out as the processor lays it out: 188 audio soft
   tokens between the begin/end-of-audio ids), exactly ``NEW_TOKENS`` new tokens; the peak
   allocated above the weights against the estimate's activation allowance (which adds
   ``CUDA_CONTEXT_GB`` for the context, not counted by the allocator).
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CONFIGS = Path(__file__).resolve().parents[1] / "tests" / "asr" / "data" / "gemma3n"
BATCH = 8
NEW_TOKENS = 128
GB = 1024**3


def tiny_on_gpu(folder: Path) -> dict[str, Any]:
    from core.asr import AsrModelSpec, DecodeOptions, create_backend
    from core.asr.tiny_models import build_gemma3n, noise_clips

    import torch

    spec = AsrModelSpec(key="gemma3n:tiny-random", source=str(build_gemma3n(folder)),
                        family="gemma3n", languages=("*",))
    backend = create_backend(spec, "cuda")
    backend.load()
    clips = noise_clips([1.0, 3.5, 7.0, 0.4, 2.2, 41.0], seed=3)
    options = DecodeOptions(language="fr", max_new_tokens=10, batch_size=4)
    batched = backend.transcribe(clips, options)
    alone = [backend.transcribe([c], options)[0].text for c in clips]
    out = {"dtype": backend.dtype, "device": str(next(backend.model.parameters()).device),
           "ok": [t.ok for t in batched], "texts": [t.text for t in batched],
           "same_as_one_at_a_time": [t.text for t in batched] == alone,
           "peak_gpu_gb": round(torch.cuda.max_memory_allocated() / GB, 3)}
    backend.free()
    return out


def real_shape(name: str) -> dict[str, Any]:
    from core.asr.memory import CUDA_CONTEXT_GB, estimate
    from core.asr.registry import load_asr_registry

    import numpy as np
    import torch
    from transformers import (
        Gemma3nAudioFeatureExtractor,
        Gemma3nConfig,
        Gemma3nForConditionalGeneration,
    )

    config = Gemma3nConfig.from_dict(json.loads((CONFIGS / f"{name}.json").read_text()))
    spec = load_asr_registry().get(f"gemma3n:{name}")
    planned = estimate(spec, "cuda", batch_size=BATCH, clip_seconds=30.0)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    started = time.perf_counter()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model = Gemma3nForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    built = time.perf_counter() - started
    params = sum(p.numel() for p in model.parameters())
    weights = (torch.cuda.memory_allocated() - before) / GB
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(30 * 16000)).astype(np.float32) for _ in range(BATCH)]
    features = Gemma3nAudioFeatureExtractor()(clips, sampling_rate=16000, return_tensors="pt")
    prompt = ([config.text_config.bos_token_id, 105, 2364, 107, config.boa_token_id]
              + [config.audio_token_id] * config.audio_soft_tokens_per_image
              + [config.eoa_token_id, 236761, 106, 107, 105, 4368, 107])
    ids = torch.tensor([prompt] * BATCH, device="cuda")
    torch.cuda.synchronize()
    loaded = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             input_features=features["input_features"].to("cuda", torch.bfloat16),
                             input_features_mask=features["input_features_mask"].to("cuda"),
                             max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                             do_sample=False)
    torch.cuda.synchronize()
    generate_s = time.perf_counter() - started
    activations = (torch.cuda.max_memory_allocated() - loaded) / GB
    result = {
        "params": params, "registry_params": planned.params,
        "weights_gb_measured": round(weights, 3), "weights_gb_estimate": round(
            planned.weights_gb, 3),
        "activations_gb_measured": round(activations, 3),
        "activations_gb_estimate": round(planned.activations_gb - CUDA_CONTEXT_GB, 3),
        "total_gb_measured": round(weights + activations, 3),
        "total_gb_estimate_without_context": round(planned.total_gb - CUDA_CONTEXT_GB, 3),
        "new_tokens": int(out.shape[1] - ids.shape[1]), "build_s": round(built, 1),
        "generate_s": round(generate_s, 2)}
    del model, out
    torch.cuda.empty_cache()
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python3 -m bench.gemma3n_gpu")
    parser.add_argument("--out", default="runs/bench/gemma3n-gpu")
    args = parser.parse_args(argv)
    import torch
    import transformers

    results: dict[str, Any] = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                               "transformers": transformers.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        results["tiny"] = tiny_on_gpu(Path(tmp) / "tiny-gemma3n")
    print(json.dumps(results["tiny"]), flush=True)
    for name in ("e2b", "e4b"):
        results[name] = real_shape(name)
        print(name, json.dumps(results[name]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gemma3n_gpu.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
