"""How ERT words counts for people, the same on every page and in every command."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 sample``, ``2 samples``."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
