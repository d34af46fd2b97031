"""The languages ERT knows by name: one table, and the key every part of it compares by.

Datasets, model cards, the normaliser and the models themselves each name a
language their own way (``fr``, ``fr_FR``, ``French``, ``français``, ``fra``);
all of them are reduced here to the ISO 639-1 code, so a score grouped by
language, a model's ``supports()`` and a Seamless target language agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    """One language: its ISO 639-1 code, English name, other names, and Seamless's code."""

    code: str  # ISO 639-1, the key everywhere in ERT
    english: str
    iso639_3: str  # as SeamlessM4T names it (macrolanguages resolved: arb, cmn)
    aliases: tuple[str, ...] = ()  # native and French names, lower case


LANGUAGES: tuple[Language, ...] = (
    Language("en", "English", "eng", ("anglais",)),
    Language("fr", "French", "fra", ("français", "francais")),
    Language("es", "Spanish", "spa", ("español", "espagnol")),
    Language("de", "German", "deu", ("deutsch", "allemand")),
    Language("it", "Italian", "ita", ("italiano", "italien")),
    Language("pt", "Portuguese", "por", ("português", "portugais")),
    Language("nl", "Dutch", "nld", ("nederlands", "néerlandais")),
    Language("pl", "Polish", "pol", ("polski", "polonais")),
    Language("ca", "Catalan", "cat", ("català",)),  # "catalan" in French too
    Language("ar", "Arabic", "arb", ("العربية", "arabe")),
    Language("zh", "Chinese", "cmn", ("中文", "chinois")),
    Language("ja", "Japanese", "jpn", ("日本語", "japonais")),
    Language("ru", "Russian", "rus", ("русский", "russe")),
    Language("tr", "Turkish", "tur", ("türkçe", "turc")),
    Language("uk", "Ukrainian", "ukr", ("українська", "ukrainien")),
    Language("ko", "Korean", "kor", ("한국어", "coréen")),
    Language("hi", "Hindi", "hin", ("हिन्दी",)),
    Language("sv", "Swedish", "swe", ("svenska", "suédois")),
)
BY_CODE = {language.code: language for language in LANGUAGES}
_BY_NAME = {name: language.code for language in LANGUAGES
            for name in (language.english.lower(), *language.aliases)}


def language_key(language: str | None) -> str | None:
    """``en``, ``en-US``, ``English`` → ``en``; ``fr_FR``, ``French``, ``français`` → ``fr``.

    An unknown name keeps its part before ``-``/``_`` (``pt-BR`` → ``pt``), so codes
    outside the table still compare equal across spellings.
    """
    if not language:
        return None
    lowered = language.strip().lower()
    return _BY_NAME.get(lowered, re.split(r"[-_]", lowered)[0] or None)


def iso639_3(language: str) -> str:
    """SeamlessM4T's name for a language (``fr``, ``fr-FR``, ``French`` → ``fra``); one
    outside the table is returned as is, so a caller may pass Seamless's own code."""
    found = BY_CODE.get(language_key(language) or "")
    return found.iso639_3 if found else language


def english_name(language: str | None) -> str | None:
    """``fr`` → ``French``, for a chat model's prompt; ``None`` outside the table."""
    found = BY_CODE.get(language_key(language) or "")
    return found.english if found else None
