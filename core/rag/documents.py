"""Reading uploaded documents (.txt, .md, .pdf) into text, refusing bad ones clearly.

Uploads arrive as bytes with a user-chosen name; the name is only used for
its extension and as a label, never as a path.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePath

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
SUPPORTED_SUFFIXES = (".txt", ".md", ".pdf")


class DocumentError(ValueError):
    """An upload that cannot be used; the message says why, for the user."""


@dataclass(frozen=True)
class Document:
    name: str
    text: str
    pages: int = 1


def safe_name(name: str) -> str:
    """A display label from an uploaded file name: no folders, no control characters."""
    base = PurePath(name.replace("\\", "/")).name
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:200] or "document"


def _looks_binary(data: bytes) -> bool:
    """NUL bytes or many control characters: an executable, image or archive, not text.

    Legacy 8-bit encodings (cp1252 French text) are not flagged: they decode below.
    """
    sample = data[:4096]
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 0x20 and b not in b"\t\n\r\f\b")
    return controls > len(sample) * 0.05


def _decode_text(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _read_pdf(name: str, data: bytes) -> tuple[str, int]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not data.lstrip()[:5].startswith(b"%PDF-"):
        raise DocumentError(f"{name}: not a PDF file (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(f"{name}: the PDF is damaged or encrypted ({exc})") from exc
    return "\n\n".join(pages), len(pages)


def read_document(name: str, data: bytes, max_bytes: int = MAX_DOCUMENT_BYTES) -> Document:
    """Turn one upload into text or raise :class:`DocumentError`."""
    label = safe_name(name)
    suffix = PurePath(label).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"{label}: unsupported type; use {', '.join(SUPPORTED_SUFFIXES)}")
    if not data:
        raise DocumentError(f"{label}: the file is empty")
    if len(data) > max_bytes:
        raise DocumentError(
            f"{label}: {len(data) / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit")
    pages = 1
    if suffix == ".pdf":
        text, pages = _read_pdf(label, data)
    else:
        if _looks_binary(data):
            raise DocumentError(f"{label}: this looks like a binary file, not text")
        text = _decode_text(data)
    if not text.strip():
        raise DocumentError(f"{label}: no text could be extracted (a scanned PDF needs OCR first)")
    return Document(name=label, text=text, pages=pages)
