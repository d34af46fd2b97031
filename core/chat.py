"""Chat turns over retrieved context: prompt assembly and source citations.

Kept apart from Streamlit so the page, the CLI and the tests share one prompt.
"""

from __future__ import annotations

from core.rag.store import Hit

from dataclasses import dataclass

SYSTEM_PROMPT = (
    "You are a helpful assistant running locally. Answer briefly and accurately. "
    "When document excerpts are given, base the answer on them and name the file you used."
)
NO_CONTEXT_NOTE = "No document context was found for this question; answering from the model alone."
MAX_CONTEXT_CHARS = 2400
MAX_HISTORY_MESSAGES = 6


@dataclass(frozen=True)
class Source:
    """A citation shown under an answer."""

    file: str
    chunk: int
    score: float
    excerpt: str

    def label(self) -> str:
        return f"{self.file} · chunk {self.chunk} · score {self.score:.2f}"


def sources_from_hits(hits: list[Hit]) -> list[Source]:
    return [Source(h.chunk.source, h.chunk.index, h.score, h.chunk.text[:300]) for h in hits]


def context_block(hits: list[Hit], max_chars: int = MAX_CONTEXT_CHARS) -> str:
    """Excerpts in score order, cut to fit a small model's context."""
    parts: list[str] = []
    used = 0
    for hit in hits:
        text = hit.chunk.text[: max(0, max_chars - used)]
        if not text:
            break
        parts.append(f"[{hit.chunk.source}, chunk {hit.chunk.index}]\n{text}")
        used += len(text)
    return "\n\n".join(parts)


def build_messages(question: str, hits: list[Hit],
                   history: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """System prompt, recent history, then the question with its excerpts."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for turn in (history or [])[-MAX_HISTORY_MESSAGES:]:
        if turn.get("role") in {"user", "assistant"} and turn.get("content"):
            messages.append({"role": turn["role"], "content": turn["content"]})
    if hits:
        content = f"Document excerpts:\n{context_block(hits)}\n\nQuestion: {question}"
    else:
        content = question
    messages.append({"role": "user", "content": content})
    return messages
