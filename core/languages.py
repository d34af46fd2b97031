"""The languages ERT knows by name: one table, and the key every part of it compares by.

Datasets, model cards, the normaliser and the models themselves each name a
language their own way (``fr``, ``fr_FR``, ``French``, ``français``, ``fra``);
all of them are reduced here to the ISO 639-1 code, so a score grouped by
language, a model's ``supports()`` and a Seamless target language agree.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
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


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Frequent function words that only one of these languages uses (as a written word), for
# telling a file's language from its references when it names none. Words shared by two of
# them (le, la, il, de, que, un, is, in, das, je, was…) are left out on purpose.
_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": _words("the and of to that it for with this you are be have not what he she they we "
                 "there his from by at which were would been has"),
    "fr": _words("les est et une dans pour pas sur au aux avec ce cette elle ils nous vous "
                 "sont mais très être été ça où ont tout comme qu leur aussi peut fait"),
    "es": _words("el los las y pero muy yo también hay cuando donde qué él ella ellos esto eso "
                 "ahora entonces hasta ya"),
    "pt": _words("não uma os em ao é você muito isso isto ele ela eles são com pelo pela foi "
                 "tem seu sua às então onde"),
    "it": _words("di che è sono gli della nel nella anche questo questa ci più molto ho io "
                 "lei noi voi loro perché essere cosa dove delle degli alla"),
    "de": _words("der und ist nicht ein eine zu den mit sich auf ich sie wir auch dem von wird "
                 "sind aber oder noch nur bei nach über für wenn kann hat"),
    "nl": _words("het een van niet zijn ook maar wat voor ik wij deze naar bij heeft hebben "
                 "worden zo nog"),
}
_LANGUAGE_OF = {word: code for code, words in _FUNCTION_WORDS.items() for word in words}
_WORD = re.compile(r"[^\W\d_]+")


def guess_language(texts: Iterable[str], min_words: int = 3, margin: float = 3.0
                   ) -> str | None:
    """The language of ``texts`` (references that name none) by their function words, or
    None unless the evidence is clear: at least ``min_words`` of one language's and
    ``margin`` times as many as any other's. Only the languages whose scoring differs (their
    own normaliser or numbers) and Dutch, which would otherwise pass for German, are told."""
    counts = Counter(_LANGUAGE_OF[word] for text in texts
                     for word in _WORD.findall(text.lower()) if word in _LANGUAGE_OF)
    ranked = counts.most_common(2) + [("", 0), ("", 0)]
    (best, hits), (_, runner_up) = ranked[0], ranked[1]
    return best if hits >= min_words and hits >= margin * runner_up else None
