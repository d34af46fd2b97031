"""Numbers in digits and in words as one value: "14" = "fourteen" = "quatorze".

A small model rewrites "fourteen minutes" as "14 minutes" (and back), so the grounding
check and the evidence ranking compare numbers by value. Words are read back through the
scoring normaliser's own speller (:func:`core.normalize.spell_number`, num2words), in
English and French: every spelling of 0–99 is a key, "hundred"/"cent", "thousand"/"mille"
and "million" multiply, "and"/"et" join ("three hundred and forty" = "trois cent quarante" = 340).
"""

from __future__ import annotations

from core.rag.lexical import fold

import functools
import re

LANGUAGES = ("en", "fr")
_BELOW = 100  # spelled one by one; "hundred"/"cent" and the multipliers build the rest
_HUNDREDS = frozenset({"hundred", "cent", "cents"})
_MULTIPLIERS = {"thousand": 1000, "mille": 1000, "milles": 1000, "million": 10**6,
                "millions": 10**6}
_JOINERS = frozenset({"and", "et"})
_WEAK = frozenset({"one", "un", "une"})  # alone, an article or a pronoun more than a count
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[^\W\d_]+")
_LONGEST = 4  # words in a spelling of 0-99 ("quatre vingt dix neuf")


@functools.cache
def _spellings() -> dict[tuple[str, ...], int]:
    """Every English and French spelling of 0–99 as folded words, joiners left out."""
    from core.normalize import spell_number

    table: dict[tuple[str, ...], int] = {}
    for language in LANGUAGES:
        for number in range(_BELOW):
            table.setdefault(_words(fold(spell_number(number, language))), number)
    return table


@functools.cache
def _vocabulary() -> frozenset[str]:
    return (frozenset(w for key in _spellings() for w in key) | _HUNDREDS
            | frozenset(_MULTIPLIERS))


def _words(text: str) -> tuple[str, ...]:
    return tuple(w for w in _TOKEN.findall(text) if w not in _JOINERS)


def is_number_word(term: str) -> bool:
    """Whether a term ("twenty-six", "quatorze", "cent") only spells a number."""
    parts = [p for p in term.split("-") if p]
    return bool(parts) and all(p in _vocabulary() or p in _JOINERS for p in parts)


def _digits(token: str) -> str:
    value = token.replace(",", "").rstrip(".:")
    return str(int(value)) if value.isdigit() else value


def _below_hundred(words: list[str], pos: int) -> tuple[int | None, int]:
    table = _spellings()
    for size in range(min(_LONGEST, len(words) - pos), 0, -1):
        value = table.get(tuple(words[pos:pos + size]))
        if value is not None:
            return value, size
    return None, 0


def _group(words: list[str], pos: int) -> tuple[int | None, int]:
    """A number below 1000 at ``pos`` ("trois cent quarante", "a hundred", "cent")."""
    value, taken = _below_hundred(words, pos)
    if pos + taken < len(words) and words[pos + taken] in _HUNDREDS and (value or 1) < 10:
        rest, more = _below_hundred(words, pos + taken + 1)
        return (value or 1) * 100 + (rest or 0), taken + 1 + more
    return value, taken


def _read(words: list[str]) -> tuple[int, int] | None:
    """The value spelled at the start of ``words`` and how many words it took."""
    total, pos = 0, 0
    while pos < len(words):
        value, taken = _group(words, pos)
        multiplier = _MULTIPLIERS.get(words[pos + taken]) if pos + taken < len(words) else None
        if value is None and multiplier is None:
            break
        pos += taken
        if multiplier is None:
            total += value or 0
            break
        total += (1 if value is None else value) * multiplier  # "mille" alone is 1000
        pos += 1
    return (total, pos) if pos else None


def number_values(text: str, weak: bool = True) -> set[str]:
    """Every number of ``text`` as its value in digits ("2,877" -> "2877", "vingt-huit mille"
    -> "28000"; times and decimals as written: "6:30", "1.6"). ``weak=False`` leaves out a
    lone "one"/"un", which is mostly not a count."""
    found: set[str] = set()
    tokens = _TOKEN.findall(fold(text))
    vocabulary = _vocabulary()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token[0].isdigit():
            found.add(_digits(token))
            i += 1
            continue
        run: list[str] = []
        j = i
        while j < len(tokens) and (tokens[j] in vocabulary or (
                run and tokens[j] in _JOINERS and j + 1 < len(tokens)
                and tokens[j + 1] in vocabulary)):
            if tokens[j] not in _JOINERS:
                run.append(tokens[j])
            j += 1
        read = _read(run) if run else None
        if read is None:
            i += 1
            continue
        value, used = read
        if weak or used > 1 or run[0] not in _WEAK:
            found.add(str(value))
        # move past the words read (joiners between them included)
        seen = 0
        while i < len(tokens) and seen < used:
            seen += tokens[i] not in _JOINERS
            i += 1
    return found
