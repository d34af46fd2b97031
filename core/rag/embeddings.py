"""The embedding model: bundled all-MiniLM-L6-v2 through LangChain's HuggingFaceEmbeddings.

Normalized vectors (so inner product is cosine similarity in FAISS), no
progress bar, batch size 8 as the CPU notes and the issue ask. On 2 cores
batch 32 embeds chunks of ~750 characters 1.3-1.4x faster (``python -m bench
rag``) for a peak ~180 MB higher (+280 MB against +100).
"""

from __future__ import annotations

from core import bundled, threads

from typing import Any

EMBEDDING_MODEL = "all-minilm-l6-v2"
EMBEDDING_DIM = 384
# The issue (after the CPU notes) fixes 8; `bench rag` measured 32 at x1.3-1.4 the rate for
# ~180 MB more peak memory: pass batch_size=32 where that trade is wanted.
BATCH_SIZE = 8


def load_embeddings(device: str = "cpu", batch_size: int = BATCH_SIZE) -> Any:
    """A ``langchain_huggingface.HuggingFaceEmbeddings`` over the verified bundled model."""
    threads.apply_torch()
    from langchain_huggingface import HuggingFaceEmbeddings

    folder = bundled.locate(EMBEDDING_MODEL)
    return HuggingFaceEmbeddings(
        model_name=str(folder),
        model_kwargs={"device": device, "local_files_only": True},
        encode_kwargs={"batch_size": batch_size, "normalize_embeddings": True,
                       "convert_to_numpy": True},
        show_progress=False,
    )
