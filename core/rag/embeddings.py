"""The embedding model: bundled all-MiniLM-L6-v2 through LangChain's HuggingFaceEmbeddings.

Normalized vectors (so inner product is cosine similarity in FAISS), no
progress bar, batch size 8 as the CPU notes and the issue ask. On 2 cores
batch 32 embeds chunks of ~750 characters 1.3-1.4x faster (``python -m bench
rag``) for a peak ~180 MB higher (+280 MB against +100).

Where the CPU computes bf16 natively (``avx512_bf16``, AMX), the model runs under
``torch.autocast(bfloat16)``: indexing about twice as fast on this project's machine, with
vectors at cosine > 0.99 of fp32's and retrieval unchanged (issue 30, ``python -m bench
indexing``); fp32 elsewhere, where bf16 is emulated and slower.
"""

from __future__ import annotations

from core import bundled, system, threads
from core.devices import is_cpu

import contextlib
import os
from typing import Any

EMBEDDING_MODEL = "all-minilm-l6-v2"
EMBEDDING_DIM = 384
# The issue (after the CPU notes) fixes 8; `bench rag` measured 32 at x1.3-1.4 the rate for
# ~180 MB more peak memory: pass batch_size=32 where that trade is wanted.
BATCH_SIZE = 8


class AutocastEmbeddings:
    """LangChain embeddings whose model runs under ``torch.autocast`` (bf16) on the CPU."""

    def __init__(self, inner: Any, bf16: bool) -> None:
        self.inner = inner
        self.bf16 = bf16

    def _precision(self) -> contextlib.AbstractContextManager[Any]:
        if not self.bf16:
            return contextlib.nullcontext()
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with self._precision():
            return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        with self._precision():
            return self.inner.embed_query(text)


def use_bf16(device: str = "cpu") -> bool:
    """bf16 autocast on a CPU that computes bf16 natively; ``ERT_EMBED_BF16=0`` turns it off."""
    off = os.environ.get("ERT_EMBED_BF16", "1").strip().lower() in {"0", "false", "no", "off"}
    return is_cpu(device) and not off and system.cpu_has_bf16()


def load_embeddings(device: str = "cpu", batch_size: int = BATCH_SIZE,
                    bf16: bool | None = None) -> AutocastEmbeddings:
    """The verified bundled model through ``langchain_huggingface.HuggingFaceEmbeddings``,
    under bf16 autocast where :func:`use_bf16` (or ``bf16``) says so."""
    threads.apply_torch()
    from langchain_huggingface import HuggingFaceEmbeddings

    folder = bundled.locate(EMBEDDING_MODEL)
    inner = HuggingFaceEmbeddings(
        model_name=str(folder),
        model_kwargs={"device": device, "local_files_only": True},
        encode_kwargs={"batch_size": batch_size, "normalize_embeddings": True,
                       "convert_to_numpy": True},
        show_progress=False,
    )
    return AutocastEmbeddings(inner, use_bf16(device) if bf16 is None else bf16)
