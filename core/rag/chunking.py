"""Splitting documents into overlapping chunks sized for a small model's context."""

from __future__ import annotations

CHUNK_SIZE = 800
CHUNK_OVERLAP = 120


def split_text(text: str, chunk_size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Paragraph-, then sentence-, then word-aware splits (LangChain's recursive splitter)."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size, chunk_overlap=overlap,
        separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
    )
    return [piece.strip() for piece in splitter.split_text(text) if piece.strip()]
