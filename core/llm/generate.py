"""Streamed generation under ``torch.inference_mode()``, stoppable, memory freed after.

A worker thread decodes and feeds a :class:`TextPieces` streamer; the caller
iterates text pieces as they are decoded. On CPU the worker uses the
onnxruntime-genai engine of :mod:`core.llm.onnx_engine` when the model has one,
else the packed decoder of :mod:`core.llm.packed_decoder` (both several times faster
than ``model.generate`` for small models), else ``model.generate``. A
per-model lock makes concurrent sessions take turns instead of racing on the
model, and each call has its own KV cache, so two sessions both finish correctly.
"""

from __future__ import annotations

from core.devices import is_cuda
from core.llm.loader import LoadedLLM

import gc
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

CPU_MAX_NEW_TOKENS = 800
GPU_MAX_NEW_TOKENS = 2500


def default_max_new_tokens(device: str) -> int:
    """The seed's budgets: short answers on CPU, long ones on the GPU."""
    return GPU_MAX_NEW_TOKENS if is_cuda(device) else CPU_MAX_NEW_TOKENS


@dataclass
class GenerationOptions:
    max_new_tokens: int = CPU_MAX_NEW_TOKENS
    temperature: float = 0.3
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    min_new_tokens: int = 0  # end-of-sequence is held back until then (benchmarks)

    def generate_kwargs(self) -> dict[str, Any]:
        sample = self.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": int(self.max_new_tokens),
            "do_sample": sample,
            "repetition_penalty": self.repetition_penalty,
        }
        if self.min_new_tokens:
            kwargs["min_new_tokens"] = int(self.min_new_tokens)
        if sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs


@dataclass
class GenerationStats:
    """Filled in while streaming; read after the iterator is exhausted."""

    prompt_tokens: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
    waited_seconds: float = 0.0
    stopped: bool = False
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def logits_processors(options: GenerationOptions,
                      top_k: int | None = None) -> Callable[[Any, Any], Any] | None:
    """What ``generate`` does to the logits under ``options``, in its order (repetition
    penalty, temperature, top-k, top-p), for the packed decoder; ``None`` when nothing.

    Written out rather than built from transformers' processors so that a greedy or
    penalised answer never imports transformers (seconds at ``ert chat``'s start);
    ``tests/llm/test_lean.py`` holds them equal to transformers'. ``top_k``: the model's
    default (``generate`` takes 50 when it has none).
    """
    import torch

    penalty = options.repetition_penalty
    steps: list[Callable[[Any, Any], Any]] = []
    if penalty and penalty != 1.0:
        def repetition(ids: Any, scores: Any) -> Any:
            seen = torch.gather(scores, 1, ids)
            return scores.scatter(1, ids, torch.where(seen < 0, seen * penalty, seen / penalty))

        steps.append(repetition)
    if options.temperature > 0:
        temperature, top_p, k = options.temperature, options.top_p, top_k or 50
        if temperature != 1.0:
            steps.append(lambda ids, scores: scores / temperature)

        def keep_top_k(ids: Any, scores: Any) -> Any:
            kth = torch.topk(scores, min(k, scores.size(-1)))[0][..., -1, None]
            return scores.masked_fill(scores < kth, -float("inf"))

        steps.append(keep_top_k)
        if top_p < 1.0:
            def keep_top_p(ids: Any, scores: Any) -> Any:
                ordered, order = torch.sort(scores, descending=False)
                drop = ordered.softmax(dim=-1).cumsum(dim=-1) <= (1 - top_p)
                drop[..., -1:] = False  # at least one token stays
                return scores.masked_fill(drop.scatter(1, order, drop), -float("inf"))

            steps.append(keep_top_p)
    if not steps:
        return None

    def apply(ids: Any, scores: Any) -> Any:
        for step in steps:
            scores = step(ids, scores)
        return scores

    return apply


class TextPieces:
    """Decoded text in whole words, as tokens arrive: what ``generate``'s ``streamer``
    argument takes (``put``/``end``), iterated by the reader in another thread.

    The same rule as transformers' ``TextIteratorStreamer`` (a piece ends at a space,
    a newline or a CJK character) without importing transformers; the prompt, the
    first ``put``, is skipped.
    """

    _END = object()

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.queue: queue.Queue[object] = queue.Queue()
        self.tokens: list[int] = []
        self.shown = 0
        self.prompt_done = False

    def put(self, value: Any) -> None:
        if len(value.shape) > 1:
            value = value[0]
        if not self.prompt_done:
            self.prompt_done = True
            return
        self.tokens.extend(value.tolist())
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if text.endswith("\n"):
            piece, self.tokens, self.shown = text[self.shown:], [], 0
        elif text and _is_cjk(ord(text[-1])):
            piece = text[self.shown:]
            self.shown += len(piece)
        else:
            piece = text[self.shown:text.rfind(" ") + 1]
            self.shown += len(piece)
        if piece:
            self.queue.put(piece)

    def end(self) -> None:
        if self.tokens:
            rest = self.tokenizer.decode(self.tokens, skip_special_tokens=True)[self.shown:]
            if rest:
                self.queue.put(rest)
        self.tokens, self.shown = [], 0
        self.queue.put(self._END)

    def __iter__(self) -> Iterator[str]:
        while (piece := self.queue.get()) is not self._END:
            yield str(piece)


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in (
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


def _generate_fast(llm: LoadedLLM, input_ids: Any, options: GenerationOptions,
                   stop: threading.Event, streamer: Any, stats: GenerationStats) -> int:
    """Decode with the packed CPU decoder, feeding ``streamer`` as ``generate`` would."""
    streamer.put(input_ids)  # the prompt, skipped by the streamer like generate's
    result = llm.fast.generate(
        input_ids, int(options.max_new_tokens),
        processors=logits_processors(options, llm.fast.top_k),
        do_sample=options.temperature > 0, min_new_tokens=int(options.min_new_tokens),
        should_stop=stop.is_set, on_token=streamer.put)
    streamer.end()
    stats.extra.update(prefill_seconds=result.prefill_seconds,
                       decode_tokens_per_second=result.decode_tokens_per_second)
    return result.new_tokens


def _generate_onnx(llm: LoadedLLM, input_ids: Any, options: GenerationOptions,
                   stop: threading.Event, streamer: Any, stats: GenerationStats) -> int:
    """Decode with the onnxruntime-genai engine, feeding ``streamer`` as ``generate`` would."""
    import torch

    streamer.put(input_ids)  # the prompt, skipped by the streamer like generate's
    result = llm.onnx.generate(
        input_ids[0].tolist(), int(options.max_new_tokens), do_sample=options.temperature > 0,
        temperature=options.temperature, top_p=options.top_p,
        repetition_penalty=options.repetition_penalty, min_new_tokens=int(options.min_new_tokens),
        should_stop=stop.is_set, on_token=lambda token: streamer.put(torch.tensor([token])))
    streamer.end()
    stats.extra.update(prefill_seconds=result.prefill_seconds,
                       decode_tokens_per_second=result.decode_tokens_per_second)
    return result.new_tokens


def encode_chat(llm: LoadedLLM, messages: list[dict[str, str]]) -> dict[str, Any]:
    """Apply the model's chat template (or a plain fallback) and move to its device."""
    tok = llm.tokenizer
    if getattr(tok, "chat_template", None):
        enc = tok.apply_chat_template(messages, add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
    else:
        text = "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
        enc = tok(text, return_tensors="pt")
    return {k: v.to(llm.device) for k, v in enc.items()}


def free_memory(device: str) -> None:
    """Return freed tensors to the system: collect, and empty the CUDA cache on GPU."""
    gc.collect()
    if is_cuda(device):
        import torch

        torch.cuda.empty_cache()


def stream_chat(
    llm: LoadedLLM,
    messages: list[dict[str, str]],
    options: GenerationOptions | None = None,
    stop: threading.Event | None = None,
    stats: GenerationStats | None = None,
) -> Iterator[str]:
    """Yield the answer piece by piece. Setting ``stop`` ends generation early.

    If the consumer abandons the iterator (a Streamlit rerun), generation is
    stopped too, so no thread keeps burning CPU for a reader that is gone.
    """
    import torch

    options = options or GenerationOptions(max_new_tokens=default_max_new_tokens(llm.device))
    stop = stop or threading.Event()
    stats = stats if stats is not None else GenerationStats()
    inputs = encode_chat(llm, messages)
    stats.prompt_tokens = int(inputs["input_ids"].shape[1])
    streamer = TextPieces(llm.tokenizer)
    asked = time.perf_counter()

    def _worker() -> None:
        nonlocal inputs
        output = None
        try:
            with llm.lock:
                stats.waited_seconds = time.perf_counter() - asked
                started = time.perf_counter()
                fast = getattr(llm, "fast", None)  # test doubles may lack it
                onnx = getattr(llm, "onnx", None)
                stats.extra["engine"] = ("onnxruntime-genai" if onnx is not None
                                         else "ert-fast" if fast is not None else "transformers")
                with torch.inference_mode():
                    if onnx is not None:
                        stats.new_tokens = _generate_onnx(llm, inputs["input_ids"], options,
                                                          stop, streamer, stats)
                    elif fast is not None:
                        stats.new_tokens = _generate_fast(llm, inputs["input_ids"], options,
                                                          stop, streamer, stats)
                    else:
                        from transformers import StoppingCriteria, StoppingCriteriaList

                        class _StopOnEvent(StoppingCriteria):
                            def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> bool:
                                return stop.is_set()

                        output = llm.model.generate(
                            **inputs, streamer=streamer,
                            stopping_criteria=StoppingCriteriaList([_StopOnEvent()]),
                            pad_token_id=llm.tokenizer.pad_token_id,
                            **options.generate_kwargs(),
                        )
                        stats.new_tokens = int(output.shape[1] - inputs["input_ids"].shape[1])
                stats.seconds = time.perf_counter() - started
        except Exception as exc:  # surfaced to the reader below
            stats.error = f"{type(exc).__name__}: {exc}"
            streamer.end()
        finally:
            del output
            inputs = {}
            free_memory(llm.device)

    worker = threading.Thread(target=_worker, name="ert-generate", daemon=True)
    worker.start()
    try:
        yield from streamer
    finally:
        if worker.is_alive() and not stop.is_set():
            stats.stopped = True
            stop.set()
        worker.join()
        stats.stopped = stats.stopped or stop.is_set()
    if stats.error:
        raise RuntimeError(f"generation failed: {stats.error}")
