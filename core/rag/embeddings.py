"""The embedding model: bundled all-MiniLM-L6-v2 through LangChain's HuggingFaceEmbeddings.

Settings follow the CPU notes: normalized vectors (so inner product is cosine
similarity in FAISS), batch size 8, no progress bar.
"""

from __future__ import annotations

from core import bundled, threads

from typing import Any

EMBEDDING_MODEL = "all-minilm-l6-v2"
EMBEDDING_DIM = 384


def load_embeddings(device: str = "cpu", batch_size: int = 8) -> Any:
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
