"""Writing a file (or a folder) so that no reader, and no other writer, ever sees half of it.

The content goes to a temporary name beside it, then replaces it in one rename. The
temporary name is unique to the call: several processes may write the same file at once
(data-parallel workers verifying or joining a bundled model on first use; a fixed ``.tmp``
name let one worker rename the other's half-written file, or find its own gone).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def temporary_sibling(path: Path) -> Path:
    """A name beside ``path`` (a file or a folder) that no other process or call uses."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` (text as UTF-8) in one rename."""
    tmp = temporary_sibling(path)
    try:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
