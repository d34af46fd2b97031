"""Chat decode speed: ERT's generation path against plain transformers and llama.cpp (issue 2).

``python -m bench llm`` — the bundled SmolLM2-135M-Instruct GGUF, one chat
prompt, greedy, exactly ``NEW_TOKENS`` new tokens (end-of-sequence held back),
decode tokens/s = (tokens - 1) / (time of last token - time of first token),
so the prompt's prefill is left out. In one process, interleaved (the order
rotates), medians of ``REPEATS`` runs each:

* baseline: ``transformers`` loaded straight from the GGUF (fp32, no cached
  conversion), default threads, ``model.generate`` under ``torch.no_grad()``;
  also at 1 thread, and at 1 thread under ``torch.inference_mode()`` (a seed
  claim; paired at 1 thread, where other processes on the cores disturb least);
* ERT: ``load_llm`` + ``stream_chat`` (the app's path) at ERT's default
  threads and at 1 thread;
* llama.cpp: ``llama_cpp.Llama(model_path=<the GGUF>, n_threads=2)``, and 1.

Then correctness: the tokens transformers fp32 would pick, checked against
ERT's and llama.cpp's (teacher-forced top-1 agreement, and where free-running
greedy text first differs), and ERT's answer to "What is the capital of France?".
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core import bundled
from core.llm.generate import GenerationOptions, GenerationStats, stream_chat
from core.llm.loader import load_llm
from core.llm.registry import load_registry

import os
import sys
import time
from typing import Any

from bench.common import median, save, table

PROMPT = "Explain in detail how a bicycle works."
CHECK_PROMPTS = [PROMPT, "What is the capital of France?", "Write a short poem about the sea."]
NEW_TOKENS = 64
CHECK_TOKENS = 64
REPEATS = 4


def _log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def _rate(stamps: list[float]) -> float:
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0


def _chat_ids(tokenizer: Any, prompt: str) -> Any:
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                         add_generation_prompt=True, return_tensors="pt",
                                         return_dict=True)["input_ids"]


class _Clock:
    """A ``generate`` streamer that only notes when each new token arrives."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if self._prompt_seen:
            self.stamps.append(time.perf_counter())
        self._prompt_seen = True

    def end(self) -> None:
        pass


def _hf_run(model: Any, ids: Any, mode: str, new_tokens: int = NEW_TOKENS,
            threads: int | None = None) -> tuple[float, list]:
    import torch

    if threads:
        torch.set_num_threads(threads)
    clock = _Clock()
    guard = torch.no_grad() if mode == "no_grad" else torch.inference_mode()
    with guard:
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             streamer=clock, pad_token_id=model.generation_config.eos_token_id)
    return _rate(clock.stamps), out[0, ids.shape[1]:].tolist()


def _ert_run(llm: Any, threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    stats = GenerationStats()
    options = GenerationOptions(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                temperature=0.0, repetition_penalty=1.0)
    for _ in stream_chat(llm, [{"role": "user", "content": PROMPT}], options, stats=stats):
        pass
    if stats.new_tokens != NEW_TOKENS:
        raise RuntimeError(f"ERT produced {stats.new_tokens} tokens, not {NEW_TOKENS}")
    return float(stats.extra.get("decode_tokens_per_second") or stats.tokens_per_second)


def _llama_run(lc: Any, ids: list[int], new_tokens: int = NEW_TOKENS) -> tuple[float, list]:
    stamps, tokens = [], []
    lc.reset()
    for token in lc.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
        stamps.append(time.perf_counter())
        tokens.append(token)
        if len(tokens) == new_tokens:
            break
    return _rate(stamps), tokens


def _gguf() -> tuple[str, str]:
    spec = load_registry().get("smollm2-135m")
    folder = str(bundled.locate(spec.source.split(":", 1)[1]))
    return folder, str(spec.gguf_file)


def _first_diff(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a),
                                                                                       len(b)))


def _correctness(ref: Any, llm: Any, lc_scores: Any, ids_list: list) -> dict[str, Any]:
    """Agreement with transformers fp32 over its own greedy continuations."""
    import numpy as np
    import torch

    agree = {"ert": [0, 0], "llama.cpp": [0, 0]}
    first_diff = []
    for ids in ids_list:
        n = ids.shape[1]
        _, ref_tokens = _hf_run(ref, ids, "inference_mode", CHECK_TOKENS)
        seq = torch.tensor(ids[0].tolist() + ref_tokens)
        with torch.inference_mode():
            target = ref(input_ids=seq[None]).logits[0, n - 1:-1].argmax(-1)
            cache = llm.fast.new_cache(seq.numel())
            steps = [llm.fast.forward(seq[:n], 0, cache)]
            steps += [llm.fast.forward(seq[i:i + 1], i, cache) for i in range(n, seq.numel() - 1)]
            mine = torch.cat(steps).argmax(-1)
        lc_scores.reset()
        lc_scores.eval(seq.tolist())
        theirs = torch.from_numpy(np.asarray(lc_scores.scores[:seq.numel()])[n - 1:-1]).argmax(-1)
        for key, picks in (("ert", mine), ("llama.cpp", theirs)):
            agree[key][0] += int((picks == target).sum())
            agree[key][1] += target.numel()
        free: list[int] = []
        llm.fast.generate(ids, CHECK_TOKENS, min_new_tokens=CHECK_TOKENS,
                          on_token=lambda t, sink=free: sink.append(int(t)))
        first_diff.append(_first_diff(free, ref_tokens))
    question = [{"role": "user", "content": "What is the capital of France?"}]
    answer = "".join(stream_chat(llm, question,
                                 GenerationOptions(max_new_tokens=48, temperature=0.0)))
    return {
        "teacher_forced_top1_agreement": {k: a / t for k, (a, t) in agree.items()},
        "free_running_first_difference": first_diff,
        "compared_tokens_per_prompt": CHECK_TOKENS,
        "paris_answer": answer.strip(),
        "paris_ok": "Paris" in answer,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = argv or []
    repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else REPEATS
    import torch
    from llama_cpp import Llama
    from transformers import AutoModelForCausalLM

    default_threads = torch.get_num_threads()
    folder, gguf_file = _gguf()
    gguf_path = f"{folder}/{gguf_file}"

    started = time.perf_counter()
    # This bench measures ERT's packed decoder (the ONNX engine: `bench chat_engine`).
    os.environ["ERT_LLM_ONNX"] = "0"
    llm = load_llm(load_registry().get("smollm2-135m"))
    ert_load = time.perf_counter() - started
    if llm.fast is None:
        raise SystemExit("ERT's fast decoder is off (ERT_LLM_FAST=0?): nothing to compare")
    _log(f"ERT load {ert_load:.1f} s ({llm.engine})")
    started = time.perf_counter()
    base = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file,
                                                dtype=torch.float32).eval()
    base_load = time.perf_counter() - started
    _log(f"baseline load from the GGUF {base_load:.1f} s")
    lcs = {n: Llama(model_path=gguf_path, n_threads=n, n_ctx=512, verbose=False) for n in (2, 1)}

    ids = _chat_ids(llm.tokenizer, PROMPT)
    id_list = ids[0].tolist()
    t = default_threads
    variants = {
        f"transformers fp32 generate, no_grad, {t} thr (baseline)":
            lambda: _hf_run(base, ids, "no_grad", threads=t)[0],
        "transformers fp32 generate, no_grad, 1 thr":
            lambda: _hf_run(base, ids, "no_grad", threads=1)[0],
        "transformers fp32 generate, inference_mode, 1 thr":
            lambda: _hf_run(base, ids, "inference_mode", threads=1)[0],
        f"ERT stream_chat, {t} thr (default)": lambda: _ert_run(llm, t),
        "ERT stream_chat, 1 thr": lambda: _ert_run(llm, 1),
        "llama.cpp, 2 thr": lambda: _llama_run(lcs[2], id_list)[0],
        "llama.cpp, 1 thr": lambda: _llama_run(lcs[1], id_list)[0],
    }
    names = list(variants)
    rates: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(repeats):
        order = names[rep % len(names):] + names[:rep % len(names)]  # rotate: no fixed order
        for name in order:
            rates[name].append(variants[name]())
        torch.set_num_threads(default_threads)
        _log(f"repeat {rep + 1}/{repeats}: " + ", ".join(f"{rates[n][-1]:.1f}" for n in names))

    baseline, hf1, hf1_inf, ert, ert1, llama2, llama1 = names
    med = {n: median(rates[n]) for n in names}
    rows = [{"variant": n, "tok/s median": med[n], "min": min(rates[n]), "max": max(rates[n]),
             "x baseline": med[n] / med[baseline], "x llama.cpp 2thr": med[n] / med[llama2],
             "x llama.cpp 1thr": med[n] / med[llama1]} for n in names]
    title = (f"decode tokens/s, SmolLM2-135M-Instruct Q4_1 GGUF, {NEW_TOKENS} new tokens, "
             f"greedy, prompt {ids.shape[1]} tokens, median of {repeats}")
    print(table(rows, title))
    paired = [a / b for a, b in zip(rates[hf1_inf], rates[hf1], strict=True)]

    torch.set_num_threads(1)  # untimed from here; one thread suffers least from shared cores
    lc_scores = Llama(model_path=gguf_path, n_threads=1, n_ctx=512, logits_all=True,
                      verbose=False)
    check = _correctness(base, llm, lc_scores,
                         [_chat_ids(llm.tokenizer, p) for p in CHECK_PROMPTS])
    tf = check["teacher_forced_top1_agreement"]
    print(f"correctness vs transformers fp32 ({len(CHECK_PROMPTS)} prompts x {CHECK_TOKENS} "
          f"tokens): top-1 agreement ERT {100 * tf['ert']:.1f} %, llama.cpp "
          f"{100 * tf['llama.cpp']:.1f} %; free-running greedy first differs at token "
          f"{check['free_running_first_difference']} (of {CHECK_TOKENS})")
    print(f"ERT: 'What is the capital of France?' -> {check['paris_answer']!r}")
    print(f"ERT vs transformers: x{med[ert] / med[baseline]:.1f} at {t} threads, "
          f"x{med[ert1] / med[hf1]:.1f} at 1 thread; ERT vs llama.cpp: "
          f"x{med[ert] / med[llama2]:.2f} at {t} threads, x{med[ert1] / med[llama1]:.2f} at "
          f"1 thread; inference_mode vs no_grad (1 thread, median of paired runs): "
          f"x{median(paired):.3f}")
    result = {
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf", "prompt": PROMPT,
        "prompt_tokens": int(ids.shape[1]), "new_tokens": NEW_TOKENS, "repeats": repeats,
        "default_threads": default_threads, "rates": rates, "rows": rows,
        "ert_vs_transformers": med[ert] / med[baseline],
        "ert_vs_transformers_1thread": med[ert1] / med[hf1],
        "ert_vs_llama_cpp": med[ert] / med[llama2],
        "ert_vs_llama_cpp_1thread": med[ert1] / med[llama1],
        "inference_mode_vs_no_grad_paired_1thread": median(paired),
        "ert_load_seconds": ert_load, "baseline_gguf_load_seconds": base_load,
        "ert_engine": llm.engine, "ert_packed_mb": llm.fast.nbytes / 1e6,
        "correctness": check,
    }
    print(f"saved {save('llm', result)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
