"""The levers tried for issue 2, one by one, on SmolLM2-135M (not part of ``make bench``).

``python -m bench llm_levers [-- --compile]`` — decode tokens/s of
transformers ``generate`` with fp32, bf16 and int8-dynamic weights, of a bare
greedy loop over the model's forward (``DynamicCache``, no ``generate``), and
of ERT's packed decoder; interleaved, median of ``REPEATS``, at 1 thread and
at the default. Each also reports where its greedy tokens first differ from
fp32 ``generate``. ``--compile`` adds a static KV cache + ``torch.compile``
and its compile time (minutes on 2 cores).
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.llm.loader import load_llm
from core.llm.registry import load_registry

import copy
import os
import sys
import time
import warnings
from typing import Any

from bench.common import median, save, table
from bench.llm import PROMPT, _chat_ids, _Clock, _first_diff, _rate

NEW_TOKENS = 64
REPEATS = 3


def _generate(model: Any, ids: Any, **kwargs: Any) -> tuple[float, list[int]]:
    import torch

    clock = _Clock()
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, streamer=clock,
                             pad_token_id=model.generation_config.eos_token_id, **kwargs)
    return _rate(clock.stamps), out[0, ids.shape[1]:].tolist()


def _bare_loop(model: Any, ids: Any) -> tuple[float, list[int]]:
    import torch
    from transformers import DynamicCache

    stamps, tokens = [], []
    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        logits = model(input_ids=ids, past_key_values=cache, logits_to_keep=1).logits
        for pos in range(ids.shape[1], ids.shape[1] + NEW_TOKENS):
            token = logits[0, -1].argmax()
            stamps.append(time.perf_counter())
            tokens.append(int(token))
            logits = model(input_ids=token.view(1, 1), past_key_values=cache,
                           position_ids=torch.tensor([[pos]])).logits
    return _rate(stamps), tokens


def _ert(llm: Any, ids: Any) -> tuple[float, list[int]]:
    tokens: list[int] = []
    result = llm.fast.generate(ids, NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                               on_token=lambda t: tokens.append(int(t)))
    return result.decode_tokens_per_second, tokens


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = argv or []
    import torch

    default_threads = torch.get_num_threads()
    os.environ["ERT_LLM_ONNX"] = "0"  # the packed decoder's levers (ONNX: bench chat_engine)
    llm = load_llm(load_registry().get("smollm2-135m"))
    fp32 = llm.model
    ids = _chat_ids(llm.tokenizer, PROMPT)
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice
        int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(fp32), {torch.nn.Linear},
                                                      dtype=torch.qint8)
    variants = {
        "generate fp32 (baseline)": lambda: _generate(fp32, ids),
        "generate bf16 weights": lambda: _generate(bf16, ids),
        "generate int8 dynamic (torch.ao)": lambda: _generate(int8, ids),
        "bare loop fp32, DynamicCache": lambda: _bare_loop(fp32, ids),
        "ERT packed decoder": lambda: _ert(llm, ids),
    }
    rows = []
    _, reference = _generate(fp32, ids)
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        rates: dict[str, list[float]] = {n: [] for n in variants}
        diffs: dict[str, int] = {}
        names = list(variants)
        for rep in range(REPEATS):
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                rate, tokens = variants[name]()
                rates[name].append(rate)
                diffs[name] = _first_diff(tokens, reference)
        base = median(rates[names[0]])
        rows += [{"threads": threads, "variant": n, "tok/s median": median(rates[n]),
                  "x fp32 generate": median(rates[n]) / base,
                  "greedy = fp32 for first N tokens": diffs[n]} for n in names]
        print(f"  {threads} thread(s) done", file=sys.stderr, flush=True)
    torch.set_num_threads(default_threads)
    result: dict[str, Any] = {"new_tokens": NEW_TOKENS, "repeats": REPEATS, "rows": rows}
    if "--compile" in argv:
        model = copy.deepcopy(fp32)
        model.forward = torch.compile(model.forward, dynamic=False)
        compiled = []
        for _ in range(3):
            started = time.perf_counter()
            rate, _ = _generate(model, ids, cache_implementation="static")
            compiled.append({"call_s": time.perf_counter() - started, "tok_per_s": rate})
            print(f"  compiled call: {compiled[-1]}", file=sys.stderr, flush=True)
        result["compile"] = compiled
        rows.append({"threads": default_threads,
                     "variant": "static cache + torch.compile (3rd call)",
                     "tok/s median": compiled[-1]["tok_per_s"],
                     "x fp32 generate": None, "greedy = fp32 for first N tokens": None})
    print(table(rows, f"levers, {NEW_TOKENS} greedy tokens, median of {REPEATS}"))
    print(f"saved {save('llm_levers', result)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
