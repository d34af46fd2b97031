"""Gemma 3n (issue 17): the tiny model through ERT's GPU path, and the planner's memory
estimate for the real E2B / E4B shapes against what they take.

``python3 -m bench.gemma3n [--device cuda|cpu] [--shapes e2b e4b] [--out DIR]`` (no download:
the tiny model is built from a config, the real shapes from ``tests/asr/data/gemma3n`` with
random weights). On the CPU (``--device cpu --batch 1 --new-tokens 8``) only step 2 runs, in
bf16, measured as the process's RSS instead of the allocator's bytes.

1. The tiny random Gemma 3n of the tests (``tests.tiny_models.build_gemma3n``) loaded by
   ``create_backend(spec, "cuda")`` (bf16, straight to the GPU), a batch of clips of mixed
   lengths (one over 30 s) transcribed: every clip ok, the dtype, and whether the batched
   texts equal one clip at a time.
2. E2B and E4B: the real config built on the device in bf16 with random weights; its
   weights against ``estimate(spec, device, dtype="bfloat16").weights_gb``, then one
   ``generate`` of ``--batch`` 30 s clips (the prompt laid out as the processor lays it
   out: 188 audio soft tokens between the begin/end-of-audio ids), exactly ``--new-tokens``
   new tokens; the peak above the weights against the estimate's activation allowance (which adds
   ``CUDA_CONTEXT_GB`` for the context, not counted by the allocator).
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CONFIGS = Path(__file__).resolve().parents[1] / "tests" / "asr" / "data" / "gemma3n"
GB = 1024**3


def tiny_on_gpu(folder: Path) -> dict[str, Any]:
    from core.asr import AsrModelSpec, DecodeOptions, create_backend

    import torch

    from tests.tiny_models import build_gemma3n, noise_clips

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


def real_shape(name: str, device: str, batch: int, new_tokens: int) -> dict[str, Any]:
    from core.asr.memory import CUDA_CONTEXT_GB, estimate
    from core.asr.registry import load_asr_registry
    from core.system import process_tree_rss_gb

    import numpy as np
    import torch
    from transformers import (
        Gemma3nAudioFeatureExtractor,
        Gemma3nConfig,
        Gemma3nForConditionalGeneration,
    )

    gpu = device == "cuda"
    config = Gemma3nConfig.from_dict(json.loads((CONFIGS / f"{name}.json").read_text()))
    spec = load_asr_registry().get(f"gemma3n:{name}")
    planned = estimate(spec, device, batch_size=batch, clip_seconds=30.0,
                       dtype="bfloat16")
    context = CUDA_CONTEXT_GB if gpu else 0.0

    def used() -> float:
        return torch.cuda.memory_allocated() / GB if gpu else process_tree_rss_gb()

    if gpu:
        torch.cuda.empty_cache()
    before = used()
    started = time.perf_counter()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = Gemma3nForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    built = time.perf_counter() - started
    params = sum(p.numel() for p in model.parameters())
    weights = used() - before
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(30 * 16000)).astype(np.float32) for _ in range(batch)]
    features = Gemma3nAudioFeatureExtractor()(clips, sampling_rate=16000, return_tensors="pt")
    prompt = ([config.text_config.bos_token_id, 105, 2364, 107, config.boa_token_id]
              + [config.audio_token_id] * config.audio_soft_tokens_per_image
              + [config.eoa_token_id, 236761, 106, 107, 105, 4368, 107])
    ids = torch.tensor([prompt] * batch, device=device)
    if gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    loaded = used()
    peak = [loaded]
    stop = threading.Event()

    def sample_rss() -> None:  # the CPU has no peak counter: sample the RSS
        while not stop.wait(0.05):
            peak[0] = max(peak[0], process_tree_rss_gb())

    sampler = None if gpu else threading.Thread(target=sample_rss, daemon=True)
    if sampler is not None:
        sampler.start()
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             input_features=features["input_features"].to(device, torch.bfloat16),
                             input_features_mask=features["input_features_mask"].to(device),
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             do_sample=False)
    if gpu:
        torch.cuda.synchronize()
        peak[0] = torch.cuda.max_memory_allocated() / GB
    stop.set()
    generate_s = time.perf_counter() - started
    activations = peak[0] - loaded
    result = {
        "device": device, "batch": batch, "params": params, "registry_params": planned.params,
        "dtype": planned.dtype, "weights_gb_measured": round(weights, 3),
        "weights_gb_estimate": round(planned.weights_gb, 3),
        "activations_gb_measured": round(activations, 3),
        "activations_gb_estimate": round(planned.activations_gb - context, 3),
        "total_gb_measured": round(weights + activations, 3),
        "total_gb_estimate": round(planned.total_gb - context, 3),
        "new_tokens": int(out.shape[1] - ids.shape[1]), "build_s": round(built, 1),
        "generate_s": round(generate_s, 2)}
    del model, out
    if gpu:
        torch.cuda.empty_cache()
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python3 -m bench.gemma3n")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--shapes", nargs="+", default=["e2b", "e4b"])
    parser.add_argument("--batch", type=int, default=8, help="30 s clips in one generate")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--out", default="runs/bench/gemma3n")
    args = parser.parse_args(argv)
    import torch
    import transformers

    results: dict[str, Any] = {"torch": torch.__version__,
                               "transformers": transformers.__version__}
    if args.device == "cuda":
        results["gpu"] = torch.cuda.get_device_name(0)
        with tempfile.TemporaryDirectory() as tmp:
            results["tiny"] = tiny_on_gpu(Path(tmp) / "tiny-gemma3n")
        print(json.dumps(results["tiny"]), flush=True)
    for name in args.shapes:
        results[name] = real_shape(name, args.device, args.batch, args.new_tokens)
        print(name, json.dumps(results[name]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"gemma3n_{args.device}.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
