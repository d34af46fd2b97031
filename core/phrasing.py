"""How ERT words counts for people, the same on every page and in every command."""

from __future__ import annotations

from collections.abc import Sequence


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 sample``, ``2 samples``."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


MISSING = "—"  # what a table shows for a figure it does not have


def percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal (``12.3``), ``—`` without one."""
    return MISSING if value is None else f"{100 * value:.1f}"


def percent_span(ci: Sequence[float] | None, signed: bool = False,
                 brackets: bool = False) -> str:
    """An interval of fractions in percent: ``12.1–15.3`` (``+1.0–+4.2`` signed,
    ``[12.1, 15.3]`` in brackets), ``—`` without one."""
    if not ci:
        return MISSING
    low, high = (f"{100 * v:+.1f}" if signed else f"{100 * v:.1f}" for v in ci[:2])
    return f"[{low}, {high}]" if brackets else f"{low}–{high}"
