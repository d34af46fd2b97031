"""Measurements that need a fresh interpreter: ``python -m bench.probe NAME [JSON]``.

Import time, load time, peak memory and thread behaviour all depend on what
a process has already loaded, so the benchmarks run each of these in a new
process and read the one JSON line it prints last.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

STARTED = time.perf_counter()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def load(args: dict[str, Any]) -> dict[str, Any]:
    """Import time and ``load_llm`` time of the default chat model, as the app sees them.

    transformers imports its model and tokenizer modules on first use; they are
    imported up front here, so that "load" is reading weights and packing only.
    """
    t0 = time.perf_counter()
    import core  # noqa: F401

    import torch  # noqa: F401
    t1 = time.perf_counter()
    from core.llm.loader import load_llm
    from core.llm.registry import load_registry

    import transformers
    from transformers.models.llama import modeling_llama  # noqa: F401

    _ = (transformers.AutoModelForCausalLM, transformers.AutoTokenizer,
         transformers.LlamaForCausalLM, transformers.PreTrainedTokenizerFast)
    t2 = time.perf_counter()
    llm = load_llm(load_registry().get())
    t3 = time.perf_counter()
    peak = _peak_rss_mb()
    from core.llm import packed_decoder

    repack = None
    if args.get("repack"):  # what packing alone costs (cold loads only; warm ones read it)
        repack = time.perf_counter()
        packed_decoder.FastDecoder(llm.model)
        repack = time.perf_counter() - repack
    return {"import_torch_s": t1 - t0, "import_transformers_ert_s": t2 - t1,
            "load_llm_s": t3 - t2, "pack_s": repack, "engine": llm.engine,
            "peak_rss_mb": peak}


def lowmem(args: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS of ``from_pretrained`` on ERT's converted weights, with or without low_cpu_mem."""
    import core  # noqa: F401

    import torch
    from transformers import AutoModelForCausalLM

    before = _peak_rss_mb()
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(args["dir"], dtype=torch.float32,
                                                 low_cpu_mem_usage=args["low_cpu_mem_usage"])
    seconds = time.perf_counter() - started
    loaded = _peak_rss_mb()
    weights_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    with torch.no_grad():  # safetensors may be memory-mapped: fault every page in
        for param in model.parameters():
            param.sum()
    return {"peak_rss_mb": _peak_rss_mb(), "peak_rss_loaded_mb": loaded,
            "rss_before_mb": before, "seconds": seconds, "weights_mb": weights_mb}


def threads(args: dict[str, Any]) -> dict[str, Any]:
    """CPU cores kept busy while generating, and while idle right after, under a thread setting."""
    uncapped = args["threads"] == "uncapped"
    if uncapped:
        for name in ("ERT_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.pop(name, None)
        import torch  # before core: torch picks its own default

        library_default = torch.get_num_threads()
    else:
        os.environ["ERT_THREADS"] = str(args["threads"])
    import core  # noqa: F401

    import torch
    if uncapped:
        torch.set_num_threads(library_default)  # undo the cap core just applied
    from core.llm.generate import GenerationOptions, GenerationStats, stream_chat
    from core.llm.loader import load_llm
    from core.llm.registry import load_registry

    llm = load_llm(load_registry().get())
    options = GenerationOptions(max_new_tokens=args["tokens"], min_new_tokens=args["tokens"],
                                temperature=0.0, repetition_penalty=1.0)
    messages = [{"role": "user", "content": "Explain in detail how a bicycle works."}]
    runs = []
    for _ in range(args.get("runs", 2)):
        stats = GenerationStats()
        wall, cpu = time.perf_counter(), _cpu_seconds()
        for _ in stream_chat(llm, messages, options, stats=stats):
            pass
        wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
        runs.append({"tok_per_s": stats.new_tokens / wall, "busy": cpu / wall,
                     "decode": stats.extra.get("decode_tokens_per_second")})
    idle_wall, idle_cpu = time.perf_counter(), _cpu_seconds()
    time.sleep(args.get("idle_s", 3.0))
    idle_wall, idle_cpu = time.perf_counter() - idle_wall, _cpu_seconds() - idle_cpu
    runs.sort(key=lambda r: r["tok_per_s"])
    mid = runs[len(runs) // 2]  # the median run (upper of two)
    return {"engine": llm.engine, "torch_threads": torch.get_num_threads(),
            "tokens": args["tokens"], "tok_per_s": mid["tok_per_s"],
            "decode_tok_per_s": mid["decode"], "busy_cores_generating": mid["busy"],
            "busy_cores_idle_after": idle_cpu / idle_wall}


PROBES = {"load": load, "lowmem": lowmem, "threads": threads}


def run(name: str, args: dict[str, Any] | None = None, env: dict[str, str] | None = None,
        timeout: float = 600) -> dict[str, Any]:
    """Run a probe in a fresh interpreter; its result plus ``process_s`` (wall, start to exit)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.probe", name, json.dumps(args or {})],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if proc.returncode:
        raise RuntimeError(f"probe {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


if __name__ == "__main__":
    result = PROBES[sys.argv[1]](json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
    result["probe_s"] = time.perf_counter() - STARTED
    print(json.dumps(result))
