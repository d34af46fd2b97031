"""Streamed generation under ``torch.inference_mode()``, stoppable, memory freed after.

A worker thread decodes and feeds a ``TextIteratorStreamer``; the caller
iterates text pieces as they are decoded. On CPU the worker uses the packed
decoder of :mod:`core.llm.speed` when the model has one (several times faster
than ``model.generate`` for small models), else ``model.generate``. A
per-model lock makes concurrent sessions take turns instead of racing on the
model, and each call has its own KV cache, so two sessions both finish correctly.
"""

from __future__ import annotations

from core.llm.loader import LoadedLLM

import gc
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

CPU_MAX_NEW_TOKENS = 800
GPU_MAX_NEW_TOKENS = 2500


def default_max_new_tokens(device: str) -> int:
    """The seed's budgets: short answers on CPU, long ones on the GPU."""
    return GPU_MAX_NEW_TOKENS if device == "cuda" else CPU_MAX_NEW_TOKENS


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


def logits_processors(options: GenerationOptions, generation_config: Any) -> Any:
    """The processors ``generate`` would build from ``options``, in its order."""
    from transformers import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    processors = LogitsProcessorList()
    if options.repetition_penalty and options.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(options.repetition_penalty))
    if options.temperature > 0:
        if options.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(options.temperature))
        top_k = getattr(generation_config, "top_k", None) or 50  # generate's default
        processors.append(TopKLogitsWarper(top_k))
        if options.top_p < 1.0:
            processors.append(TopPLogitsWarper(options.top_p))
    return processors


def _generate_fast(llm: LoadedLLM, input_ids: Any, options: GenerationOptions,
                   stop: threading.Event, streamer: Any, stats: GenerationStats) -> int:
    """Decode with the packed CPU decoder, feeding ``streamer`` as ``generate`` would."""
    streamer.put(input_ids)  # the prompt, skipped by the streamer like generate's
    result = llm.fast.generate(
        input_ids, int(options.max_new_tokens),
        processors=logits_processors(options, llm.model.generation_config),
        do_sample=options.temperature > 0, min_new_tokens=int(options.min_new_tokens),
        should_stop=stop.is_set, on_token=streamer.put)
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
    return {k: v.to(llm.model.device) for k, v in enc.items()}


def free_memory(device: str) -> None:
    """Return freed tensors to the system: collect, and empty the CUDA cache on GPU."""
    gc.collect()
    if device == "cuda":
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
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    options = options or GenerationOptions(max_new_tokens=default_max_new_tokens(llm.device))
    stop = stop or threading.Event()
    stats = stats if stats is not None else GenerationStats()

    class _StopOnEvent(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            return stop.is_set()

    inputs = encode_chat(llm, messages)
    stats.prompt_tokens = int(inputs["input_ids"].shape[1])
    streamer = TextIteratorStreamer(llm.tokenizer, skip_prompt=True, skip_special_tokens=True)
    asked = time.perf_counter()

    def _worker() -> None:
        nonlocal inputs
        output = None
        try:
            with llm.lock:
                stats.waited_seconds = time.perf_counter() - asked
                started = time.perf_counter()
                fast = getattr(llm, "fast", None)  # test doubles may lack it
                stats.extra["engine"] = "ert-fast" if fast is not None else "transformers"
                with torch.inference_mode():
                    if fast is not None:
                        stats.new_tokens = _generate_fast(llm, inputs["input_ids"], options,
                                                          stop, streamer, stats)
                    else:
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
