"""The chat page's conversation on disk, one per browser session, so a reload keeps it.

A Streamlit session ends with its browser tab's connection; the page therefore keeps a
random id in its URL (``?chat=<id>``) and the messages, with the collection they were
asked of, under ``$ERT_HOME/conversations/<id>.json``: a reload finds both again (a
follow-up is not suddenly asked of other documents), a new tab starts afresh, and the
page's "Clear conversation" deletes the file. JSON only (parsed, never executed),
replaced in one rename after each change.
"""

from __future__ import annotations

from core import paths
from core.files import write_atomic

import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SESSION_PARAM = "chat"  # the URL query parameter that holds the id
_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Conversation:
    messages: list[dict[str, Any]] = field(default_factory=list)
    collection: str | None = None  # the page's collection choice (or the plain chat)


def new_session_id() -> str:
    return uuid.uuid4().hex


def valid_session_id(value: object) -> bool:
    """Ids become file names: only what :func:`new_session_id` makes is accepted."""
    return isinstance(value, str) and bool(_ID.match(value))


def _file(session_id: str, root: Path | None) -> Path:
    if not valid_session_id(session_id):
        raise ValueError(f"invalid conversation id {session_id!r}")
    return (root or paths.conversations_dir()) / f"{session_id}.json"


def load_conversation(session_id: str, root: Path | None = None) -> Conversation:
    """The saved conversation; an empty one when none was saved or the file is unreadable."""
    try:
        data = json.loads(_file(session_id, root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Conversation()
    if not isinstance(data, dict):
        return Conversation()
    messages = data.get("messages")
    collection = data.get("collection")
    return Conversation(
        [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else [],
        collection if isinstance(collection, str) else None)


def save_conversation(session_id: str, conversation: Conversation,
                      root: Path | None = None) -> None:
    write_atomic(_file(session_id, root),
                 json.dumps(asdict(conversation), ensure_ascii=False, default=str))


def clear_conversation(session_id: str, root: Path | None = None) -> None:
    _file(session_id, root).unlink(missing_ok=True)
