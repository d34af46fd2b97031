"""Splitting documents into chunks sized for a small model's context.

A chunk keeps the heading it sits under: a markdown section ("## Visits" and
its paragraphs) is split on its own, and every piece of it starts with the
heading path ("Pic Sauvage Observatory > Visits"), so a retrieved excerpt says
what it is about and a heading is never left alone in a chunk of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CHUNK_SIZE = 800
CHUNK_OVERLAP = 120
HEADING_SEPARATOR = " > "
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path (empty path: before any heading)."""

    path: tuple[str, ...]
    text: str

    @property
    def title(self) -> str:
        return HEADING_SEPARATOR.join(self.path)


def split_text(text: str, chunk_size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Paragraph-, then sentence-, then word-aware splits (LangChain's recursive splitter)."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size, chunk_overlap=overlap,
        separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
    )
    return [piece.strip() for piece in splitter.split_text(text) if piece.strip()]


def sections(text: str) -> list[Section]:
    """Markdown sections in order; a file without headings is one section."""
    found: list[Section] = []
    path: list[str] = []
    levels: list[int] = []
    lines: list[str] = []
    in_code = False

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            found.append(Section(tuple(path), body))
        lines.clear()

    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match:
            flush()
            level = len(match.group(1))
            while levels and levels[-1] >= level:
                levels.pop()
                path.pop()
            levels.append(level)
            path.append(match.group(2).strip())
        else:
            lines.append(line)
    flush()
    return found


def chunk_document(text: str, chunk_size: int = CHUNK_SIZE,
                   overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Chunks of at most ~``chunk_size`` characters, each led by its heading path."""
    chunks: list[str] = []
    for section in sections(text):
        title = section.title
        room = max(chunk_size - len(title) - 1, chunk_size // 2)
        for piece in split_text(section.text, room, min(overlap, room // 4)):
            chunks.append(f"{title}\n{piece}" if title else piece)
    return chunks
