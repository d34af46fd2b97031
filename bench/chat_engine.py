"""Chat engines side by side on the bundled SmolLM2-135M (issue 30): ERT's packed torch
decoder (:mod:`core.llm.packed_decoder`) against onnxruntime-genai
(:mod:`core.llm.onnx_engine`), int8
(ERT's choice) and int4 (the builder's ``-p int4``), at 1 and 2 threads.

``python -m bench chat_engine [-- --repeats N] [--candidate KEY]`` — every engine through
``stream_chat`` (the app's path, a worker thread), greedy, exactly 64 new tokens after a short
chat prompt: decode tok/s = (tokens - 1) / (last - first token time); first token after a
~1,000-token document prompt (the prefill a RAG answer pays). Interleaved (the order
rotates), medians; the baseline is ERT's packed decoder at 1 thread, measured in the same
run. Then, per engine in a fresh process: peak RSS after loading it and answering the long
prompt; the ONNX build time (a cold build into an empty cache); and fidelity: how often each
engine's top token equals transformers fp32's along fp32's own greedy continuations (3
prompts x 64 tokens).

``--candidate KEY`` instead measures a stronger default candidate from ``configs/llm.toml``
(issue 30 item 2) on the ONNX engine at 2 threads against the bundled default in the same
run: decode tok/s (goal >= 30) and first token on a ~1,000-token prompt (goal <= 1 s).
``--start`` times ``ert chat`` in a fresh process (``bench chat_start``'s measure: to the first
byte of the answer, to the exit, CPU seconds) with the packed decoder (``ERT_LLM_ONNX=0``,
the baseline) and with the ONNX engine, interleaved, on warm caches.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.llm import onnx_engine
from core.llm.generate import GenerationOptions, GenerationStats, stream_chat
from core.llm.loader import load_llm
from core.llm.registry import load_registry

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median, save, table

PROMPT = "Explain in detail how a bicycle works."
CHECK_PROMPTS = [PROMPT, "What is the capital of France?", "Write a short poem about the sea."]
NEW_TOKENS = 64
LONG_FACT = ("The Pic Sauvage observatory opens at nine in the morning and closes at five in the "
             "afternoon on weekdays; guided visits of the dome leave every hour from the hall. ")
ENGINES = ("packed", "onnx-int8", "onnx-int4")


def _log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def _long_messages(tokenizer: Any, target: int = 1000) -> list[dict[str, str]]:
    """A document prompt of about ``target`` tokens, as a RAG answer's."""
    text = ""
    while True:
        messages = [{"role": "system", "content": "Answer from the context."},
                    {"role": "user", "content": f"Context:\n{text}\nQuestion: When does the "
                                                "observatory open?"}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)["input_ids"]
        if ids.shape[1] >= target:
            return messages
        text += LONG_FACT


def _llm(engine: str, threads: int, key: str = "smollm2-135m") -> Any:
    """The lean load of a model (the default) with one engine, at ``threads``."""
    spec = load_registry().get(key)
    if engine == "packed":
        os.environ["ERT_LLM_ONNX"] = "0"
        try:
            return load_llm(spec, need_model=False)
        finally:
            os.environ.pop("ERT_LLM_ONNX", None)
    from core.llm.loader import LoadedLLM, converted_dir, weights_dir
    from core.llm.tokenizer import ChatTokenizer

    started = time.perf_counter()
    folder = Path(weights_dir(spec))
    onnx = onnx_engine.load(converted_dir(spec), threads=threads,
                            precision=engine.split("-")[1])
    if onnx is None:
        raise SystemExit(f"{engine}: the ONNX engine could not be built or loaded")
    return LoadedLLM(spec=spec, model=None, tokenizer=ChatTokenizer.from_folder(folder),
                     device="cpu", dtype=onnx.precision,
                     load_seconds=time.perf_counter() - started, weights_dir=str(folder),
                     onnx=onnx)


def _run(llm: Any, threads: int, messages: list[dict[str, str]], new_tokens: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    stats = GenerationStats()
    options = GenerationOptions(max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                temperature=0.0, repetition_penalty=1.0)
    for _ in stream_chat(llm, messages, options, stats=stats):
        pass
    if stats.new_tokens != new_tokens:
        raise RuntimeError(f"{llm.engine}: {stats.new_tokens} tokens, not {new_tokens}")
    return {"decode": float(stats.extra["decode_tokens_per_second"]),
            "prefill": float(stats.extra["prefill_seconds"]), "prompt": stats.prompt_tokens}


def _fidelity(llms: dict[str, Any]) -> dict[str, float]:
    """Teacher-forced top-1 agreement with transformers fp32 along its greedy text."""
    import numpy as np
    import onnxruntime_genai as og
    import torch

    full = load_llm(load_registry().get("smollm2-135m"))  # transformers fp32 (and an engine)
    agree = {name: 0 for name in llms}
    total = 0
    for prompt in CHECK_PROMPTS:
        ids = full.tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                                 add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)["input_ids"]
        with torch.inference_mode():
            out = full.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                      pad_token_id=full.tokenizer.pad_token_id)
        ref = out[0, ids.shape[1]:].tolist()
        total += len(ref)
        seq = out[0]
        for name, llm in llms.items():
            if llm.onnx is None:  # the packed decoder: one prefill, then one step per token
                with torch.inference_mode():
                    cache = llm.fast.new_cache(seq.numel())
                    n = ids.shape[1]
                    steps = [llm.fast.forward(seq[:n], 0, cache)]
                    steps += [llm.fast.forward(seq[i:i + 1], i, cache)
                              for i in range(n, seq.numel() - 1)]
                agree[name] += sum(int(s.argmax()) == t for s, t in zip(steps, ref, strict=True))
                continue
            params = og.GeneratorParams(llm.onnx.model)
            params.set_search_options(max_length=seq.numel() + 1, do_sample=False)
            generator = og.Generator(llm.onnx.model, params)
            generator.append_tokens(ids[0].tolist())
            for token in ref:
                agree[name] += int(np.asarray(generator.get_logits()).reshape(-1).argmax() == token)
                generator.append_tokens([token])
    return {name: agree[name] / total for name in llms}


_CHILD = r"""
import core, json, sys, time
sys.argv = ["x"]
from bench.chat_engine import _llm, _run, _long_messages
engine, threads = {engine!r}, {threads}
started = time.perf_counter()
llm = _llm(engine, threads)
load = time.perf_counter() - started
run = _run(llm, threads, _long_messages(llm.tokenizer), 16)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over execve from the (large) parent.
peak = next(int(line.split()[1]) for line in open("/proc/self/status")
            if line.startswith("VmHWM")) / 1024
print(json.dumps({{"load_s": load, "peak_rss_mb": peak, **run}}))
"""


def _child(engine: str, threads: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _CHILD.format(engine=engine, threads=threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cold_build(source: Path) -> float:
    """Seconds of a build into an empty cache (the first use's one-time step)."""
    with tempfile.TemporaryDirectory(prefix="ert-bench-onnx-") as cache:
        env = {**os.environ, "ERT_CACHE_DIR": cache}
        code = ("import core, sys, time; from pathlib import Path; "
                "from core.llm import onnx_engine; t = time.perf_counter(); "
                f"onnx_engine.build(Path({str(source)!r})); print(time.perf_counter() - t)")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])


def _candidate(key: str, repeats: int) -> dict[str, Any]:
    """A candidate default against the bundled one, both on the ONNX engine at 2 threads."""
    started = time.perf_counter()
    llms = {"smollm2-135m": _llm("onnx-int8", 2)}
    llms[key] = _llm("onnx-int8", 2, key)  # converts and builds on first use
    _log(f"{key} ready in {time.perf_counter() - started:.0f} s (first use: conversion, build)")
    short = [{"role": "user", "content": PROMPT}]
    runs: dict[str, list[dict]] = {name: [] for name in llms}
    for llm in llms.values():
        _run(llm, 2, short, 8)
    for rep in range(repeats):
        for name in list(llms)[rep % 2:] + list(llms)[:rep % 2]:
            llm = llms[name]
            decode = _run(llm, 2, short, NEW_TOKENS)["decode"]
            first = _run(llm, 2, _long_messages(llm.tokenizer), 2)
            runs[name].append({"decode": decode, "first_long": first["prefill"],
                               "prompt": first["prompt"]})
        _log(f"repeat {rep + 1}: " + ", ".join(f"{n} {runs[n][-1]['decode']:.0f} tok/s, "
                                              f"{runs[n][-1]['first_long']:.2f} s" for n in runs))
    base = median([r["decode"] for r in runs["smollm2-135m"]])
    rows = [{"model": name, "decode tok/s (2 thr)": median([r["decode"] for r in rs]),
             "x default": median([r["decode"] for r in rs]) / base,
             "first token s": median([r["first_long"] for r in rs]),
             "prompt tokens": rs[0]["prompt"],
             "meets >= 30 tok/s and <= 1 s": median([r["decode"] for r in rs]) >= 30
             and median([r["first_long"] for r in rs]) <= 1.0} for name, rs in runs.items()]
    print(table(rows, f"candidate default on onnxruntime-genai int8, 2 threads, median of "
                      f"{repeats}"))
    result = {"candidate": key, "rows": rows, "runs": runs, "load_average": os.getloadavg()}
    print(f"saved {save('chat_engine_candidate', result)}")
    return result


def _start(repeats: int) -> dict[str, Any]:
    """``ert chat``'s start with each engine, in fresh processes, interleaved."""
    from core import paths

    from bench.chat_start import REPO, one_call

    home = Path(tempfile.mkdtemp(prefix="ert-bench-chat-"))
    base = {**os.environ, "ERT_HOME": str(home), "ERT_CACHE_DIR": str(paths.cache_dir()),
            "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    envs = {"packed (ERT_LLM_ONNX=0)": {**base, "ERT_LLM_ONNX": "0"}, "onnx int8": base}
    runs: dict[str, list[dict]] = {name: [] for name in envs}
    for env in envs.values():
        one_call(REPO, env)  # warm caches
    for rep in range(repeats):
        for name in list(envs)[rep % 2:] + list(envs)[:rep % 2]:
            runs[name].append(one_call(REPO, envs[name]))
            _log(f"{name}: {runs[name][-1]}")
    rows = [{"engine": name, "first token s": median([c["first_token_s"] for c in calls]),
             "min": min(c["first_token_s"] for c in calls),
             "total s": median([c["total_s"] for c in calls]),
             "CPU s": median([c["cpu_s"] for c in calls]), "answer": calls[-1]["answer"]}
            for name, calls in runs.items()]
    print(table(rows, f"ert chat in a fresh process, median of {repeats} (interleaved)"))
    result = {"rows": rows, "runs": runs, "load_average": os.getloadavg()}
    print(f"saved {save('chat_engine_start', result)}")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench chat_engine")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--candidate", default=None, help="a configs/llm.toml key (item 2)")
    parser.add_argument("--start", action="store_true", help="time ert chat's start instead")
    args = parser.parse_args(argv)
    if args.start:
        return _start(args.repeats)
    if args.candidate:
        return _candidate(args.candidate, args.repeats)
    llms = {(e, t): _llm(e, t) for e in ENGINES for t in (1, 2)}
    source = Path(llms[("onnx-int8", 1)].weights_dir)
    short = [{"role": "user", "content": PROMPT}]
    long = _long_messages(llms[("packed", 1)].tokenizer)
    runs: dict[tuple[str, int], list[dict]] = {key: [] for key in llms}
    keys = list(llms)
    for key in keys:  # warm-up
        _run(llms[key], key[1], short, 8)
    for rep in range(args.repeats):
        for key in keys[rep % len(keys):] + keys[:rep % len(keys)]:
            decode = _run(llms[key], key[1], short, NEW_TOKENS)["decode"]
            prefill = _run(llms[key], key[1], long, 2)
            runs[key].append({"decode": decode, "first_long": prefill["prefill"],
                              "prompt": prefill["prompt"]})
        _log(f"repeat {rep + 1}: " + ", ".join(f"{e}/{t} {runs[(e, t)][-1]['decode']:.0f}"
                                              for e, t in keys))
    _log("fidelity against transformers fp32")
    fidelity = _fidelity({e: llms[(e, 1)] for e in ENGINES})
    _log("peak RSS, one engine per process")
    memory = {e: _child(e, 1) for e in ENGINES}
    _log("cold ONNX builds")
    build = {"onnx-int8": _cold_build(source)}
    base = median([r["decode"] for r in runs[("packed", 1)]])
    rows = []
    for (engine, threads), rs in runs.items():
        rate = median([r["decode"] for r in rs])
        rows.append({"engine": engine, "threads": threads, "decode tok/s": rate,
                     "min": min(r["decode"] for r in rs), "max": max(r["decode"] for r in rs),
                     "x packed 1 thr": rate / base,
                     f"first token s @{rs[0]['prompt']} tok": median([r["first_long"] for r in rs]),
                     "top-1 = fp32": fidelity[engine],
                     "peak RSS MB": memory[engine]["peak_rss_mb"] if threads == 1 else None,
                     "load s": memory[engine]["load_s"] if threads == 1 else None})
    print(table(rows, f"SmolLM2-135M, stream_chat, greedy, {NEW_TOKENS} new tokens, median of "
                      f"{args.repeats} (interleaved); ONNX int8 cold build "
                      f"{build['onnx-int8']:.1f} s"))
    result = {"rows": rows, "runs": {f"{e}/{t}": v for (e, t), v in runs.items()},
              "fidelity": fidelity, "memory": memory, "build_seconds": build,
              "load_average": os.getloadavg(), "engine_default": onnx_engine.PRECISION}
    print(f"saved {save('chat_engine', result)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
