"""Splitting documents into chunks sized for a small model's context.

A chunk keeps the heading it sits under: a markdown section ("## Visits" and
its paragraphs) is split on its own, and every piece of it starts with the
heading path ("Pic Sauvage Observatory > Visits"), so a retrieved excerpt says
what it is about and a heading is never left alone in a chunk of its own.

Sentences are cut at sentence punctuation, not at line breaks: a hard-wrapped
``.txt``/``.md`` paragraph is one run of text, while a blank line, a list item,
a table row or a heading line ("Tournaments" above its paragraph) ends one.
A chunk that overflows is cut between sentences before it is cut at a line end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CHUNK_SIZE = 800
CHUNK_OVERLAP = 120
HEADING_SEPARATOR = " > "
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# A sentence ends at . ! ? before a capital, digit or quote — not after an initial or a
# common abbreviation ("Dr. Lucie Ferrand", "St. Gallen", "e.g. this").
_ABBREV = "".join(rf"(?<!\b{re.escape(a)})" for a in (
    "Dr.", "Mr.", "Mrs.", "Ms.", "St.", "No.", "e.g.", "i.e.", "vs.", "M.", "Mme.", "cf."))
_INITIAL = r"(?<![\s(][A-Z]\.)"
_SENTENCE_END = re.compile(_ABBREV + _INITIAL + r"(?<=[.!?…])\s+(?=[\"'«“(]?[A-ZÀ-ÖØ-Þ0-9])")
_LIST_ITEM = re.compile(r"^(?:[-*+•]|\d{1,3}[.)])\s+")
_OPEN_ENDS = (".", "!", "?", "…", ":", ";", ",")
_LINKING = frozenset({"a", "an", "the", "of", "by", "and", "or", "to", "in", "on", "at", "for",
                      "with", "de", "du", "des", "la", "le", "les", "et", "par", "à", "en"})


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
        separators=["\n\n", ". ", "? ", "! ", "\n", "; ", ", ", " ", ""],
        keep_separator="end",  # "… 5 clocks." | "Sentence 6 …", not "… 5 clocks" | ". Sentence"
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


def split_heading(chunk: str) -> tuple[str, str]:
    """A chunk's heading path (its first line, as :func:`chunk_document` puts it, or a plain
    text's title line) and its body; no heading: ``("", chunk)``."""
    first, newline, rest = chunk.partition("\n")
    line = first.strip()
    if newline and line and not line.endswith(_OPEN_ENDS) and ". " not in line and (
            HEADING_SEPARATOR in line or (len(line) < 80 and not rest.lstrip()[:1].islower())):
        return line, rest
    return "", chunk


def _heading_line(line: str, after_blank: bool, following: str) -> bool:
    """A markdown heading, or a short title line after a blank line with its paragraph
    below ("Tournaments", "OPENING HOURS") — not the first line of a wrapped paragraph."""
    if _HEADING.match(line):
        return True
    words = line.split()
    return (after_blank and 0 < len(words) <= 8 and len(line) <= 60
            and not line.endswith(_OPEN_ENDS) and words[-1].lower() not in _LINKING
            and following[:1].isupper())


def text_blocks(text: str) -> list[str]:
    """Paragraphs, list items, table rows and heading lines, each on one line: a hard-wrapped
    paragraph becomes one run of text, its line breaks spaces."""
    lines = [line.strip() for line in text.splitlines()]
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            blocks.append(" ".join(current))
            current.clear()

    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if not line:
            flush()
        elif line.startswith("|"):
            flush()
            blocks.append(line)
        elif _heading_line(line, i == 0 or not lines[i - 1], following):
            flush()
            blocks.append(_HEADING.sub(r"\2", line))
        elif _LIST_ITEM.match(line):
            flush()
            current.append(_LIST_ITEM.sub("", line))
        else:
            current.append(line)  # a wrapped line, or a list item's continuation
    flush()
    return blocks


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, cut at sentence punctuation within its blocks
    (:func:`text_blocks`), whitespace collapsed, empty ones dropped."""
    return [s.strip() for block in text_blocks(text) for s in _SENTENCE_END.split(block)
            if s.strip()]
