"""The embedding model: bundled all-MiniLM-L6-v2 through LangChain's HuggingFaceEmbeddings.

Normalized vectors (so inner product is cosine similarity in FAISS), no
progress bar, batch size 32: on 2 cores, chunks of ~750 characters embed
1.3-1.4x faster than at the seed's batch 8 (``python -m bench rag``); the
peak while embedding 256-token chunks is ~180 MB higher (+280 MB against +100).
"""

from __future__ import annotations

from core import bundled, threads

from typing import Any

EMBEDDING_MODEL = "all-minilm-l6-v2"
EMBEDDING_DIM = 384
BATCH_SIZE = 32


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
