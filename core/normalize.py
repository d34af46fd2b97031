"""The text normaliser that WER/CER scoring runs both texts through.

Whisper's normalisers (as the Open ASR Leaderboard uses them) plus what they
miss for the languages ERT is used with:

- English: ``EnglishTextNormalizer`` with Whisper's full British→American map,
  read from the ``openai-whisper`` package and refused unless its SHA-256 matches.
- French, Spanish, German, Italian, Portuguese: numbers written in digits are
  spelled out by ``num2words`` in the sample's language first (cardinals with
  ``10 000``/``10.000`` groups, ``2,5`` decimals, ordinals such as ``1er``/``3e``
  or ``1º``/``1ª``, ``%``), so a reference in words and a hypothesis in digits
  (or the reverse) agree; then the basic normaliser, which keeps accents.
- Every other language: the basic normaliser only.

Apostrophes (’ ' ʼ) and ligatures (œ, æ) are unified for every language, so
``l’œuvre`` and ``l'oeuvre`` agree. Results record :func:`normalizer_info`:
scores made under different normalisers are not comparable.

German ``3.`` is also a sentence end, so it is read as an ordinal only after an
article or contraction (``am 3. Mai`` → ``am dritten mai``, ``die 3. Klasse``),
before a month name or before a lower-case word; the ending is ``-en`` after
``am/im/vom/zum/zur/beim/dem/den/des``, ``-e`` otherwise. Everywhere else it stays a
cardinal (``es waren 3. Dann`` → ``drei dann``).
"""

from __future__ import annotations

from core.languages import (
    english_name,
    language_key,  # also re-exported: core.normalize.language_key
)

import hashlib
import importlib.util
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from num2words import num2words

NORMALIZER_NAME = "ert-normalizer"
NORMALIZER_VERSION = "ert-normalizer/2"

# Whisper's British→American map, shipped by openai-whisper (installed --no-deps, never imported).
SPELLING_PACKAGE = "openai-whisper"
SPELLING_SHA256 = "6607f948be9824d2e1b2fa2223cd94c06c45afa4e05ea0e3d5e1f2bdffde2465"

_APOSTROPHES = re.compile(r"[’‘ʼ`´′]")
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE"})


class SpellingMapError(RuntimeError):
    """The English spelling map is missing or is not the file its checksum names."""


@dataclass(frozen=True)
class _Numbers:
    """What one language reads aloud around its numbers (num2words does the rest)."""

    comma: str  # the decimal comma: "2,5"
    percent: str
    ordinal: re.Pattern[str] | None = None  # digits + ordinal suffix, see _ordinal()
    fraction_by_digit: bool = False  # "2,25" → "zwei Komma zwei fünf", not "… fünfundzwanzig"
    year_form: bool = False  # "1998" → "neunzehnhundertachtundneunzig"
    fixes: tuple[tuple[re.Pattern[str], str], ...] = ()  # applied to both sides after spelling


_INT = r"\d{1,3}(?:[ .]\d{3})+|\d+"  # "10 000", "1.234.567" (groups of 3 after 1–3 digits), "42"
_IBERO_ORDINAL = re.compile(rf"\b({_INT})\.?(er|[oa°])(?!\w)")  # º/ª are o/a after NFKC
_NUMBERS = {
    "fr": _Numbers("virgule", "pour cent",
                   re.compile(rf"\b({_INT})(ère|ere|er|re|nde|nd|ème|eme|è|e)(s?)\b"),
                   # num2words writes "quatre-vingtsième"
                   fixes=((re.compile(r"\b(vingt|cent)sième"), r"\1ième"),)),
    "es": _Numbers("coma", "por ciento", _IBERO_ORDINAL,
                   # num2words writes "décimoprimero"
                   fixes=((re.compile(r"\bdécimo(?=[a-z])"), "décimo "),)),
    "it": _Numbers("virgola", "per cento", _IBERO_ORDINAL),
    "pt": _Numbers("vírgula", "por cento", _IBERO_ORDINAL),
    "de": _Numbers("Komma", "Prozent", fraction_by_digit=True, year_form=True,
                   # num2words writes "eintausend", people mostly "tausend"
                   fixes=((re.compile(r"\bein(?=hundert|tausend)", re.I), ""),)),
}
_NUMBERS["pt_BR"] = _NUMBERS["pt"]  # num2words' pt is European (dezasseis), pt_BR dezesseis
_NUMBER = re.compile(rf"\b({_INT})(?:,(\d+))?\b")
_PERCENT = re.compile(r"\s*%")
_DE_ORDINAL = re.compile(rf"(?:\b(\w+)\s+)?\b({_INT})\.(?=\s+([^\W\d_]+))")
_DE_MONTHS = frozenset({"januar", "jänner", "februar", "märz", "april", "mai", "juni", "juli",
                        "august", "september", "oktober", "november", "dezember"})
_DE_WEAK = frozenset({"am", "im", "vom", "zum", "zur", "beim", "dem", "den", "des"})  # -en
_DE_ARTICLES = _DE_WEAK | {"der", "die", "das"}


# --- English spelling map ----------------------------------------------------------------


def spelling_file() -> Path:
    """``whisper/normalizers/english.json`` of the installed openai-whisper, found without
    importing ``whisper`` (its torch/tiktoken dependencies are deliberately not installed)."""
    spec = importlib.util.find_spec("whisper")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "normalizers" / "english.json"
        if path.is_file():
            return path
    raise SpellingMapError(
        f"Whisper's English spelling map is missing: install it with "
        f"`pip install --no-deps {SPELLING_PACKAGE}==20250625` (requirements-models.txt)")


@cache
def english_spelling_mapping() -> tuple[dict[str, str], str]:
    """Whisper's British→American spelling map and the path it was read from.

    Refused (:class:`SpellingMapError`) unless the file's SHA-256 is
    :data:`SPELLING_SHA256`: a different map would silently change English scores.
    """
    path = spelling_file()
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SPELLING_SHA256:
        raise SpellingMapError(f"refusing {path}: sha256 {digest}, expected {SPELLING_SHA256}")
    mapping = json.loads(data)
    return {str(k): str(v) for k, v in mapping.items()}, str(path)


# --- languages and numbers ---------------------------------------------------------------


def _profile(language: str | None) -> str | None:
    """The normaliser's key: the language, or ``pt_BR`` whose numbers num2words spells apart."""
    key = language_key(language)
    if key == "pt" and re.search(r"[-_ ]br\b|brazil|brasil", (language or "").lower()):
        return "pt_BR"
    return key


@lru_cache(maxsize=16384)
def _words(number: int, lang: str, to: str = "cardinal") -> str:
    try:
        return num2words(number, lang=lang, to=to)
    except (ArithmeticError, LookupError, ValueError, NotImplementedError):
        return str(number)  # beyond num2words (es stops below 10**27): left in digits


def _spell(digits: str, lang: str, year_form: bool = False) -> str:
    """Digits as words; leading zeros are read one by one ("05" → "zéro cinq")."""
    stripped = digits.lstrip("0") or "0"
    zeros = [_words(0, lang)] * (len(digits) - len(stripped))
    number = int(stripped)
    to = "year" if year_form and len(digits) == 4 and 1100 <= number <= 1999 else "cardinal"
    return " ".join([*zeros, _words(number, lang, to)])


def spell_number(number: int, language: str | None) -> str:
    """``number`` as the scoring normaliser writes it in ``language`` (14 → "fourteen" in
    English, "quatorze" in French): the one speller, shared with the RAG answer checks."""
    return _words(number, _profile(language) or "en")


def _integer(group: str) -> str:
    return group.replace(" ", "").replace(".", "")


def _feminine(words: str) -> str:
    return re.sub(r"o\b", "a", words)  # primero → primera, vigésimo primero → vigésima primera


def _ordinal(match: re.Match[str], lang: str) -> str:
    """``1er``/``1re``/``2nde``/``3e`` (fr), ``1º``/``1ª``/``1.er`` (es/it/pt) as words."""
    number, suffix = int(_integer(match[1])), match[2]
    words = _words(number, lang, "ordinal")
    if lang == "fr":
        if suffix in ("re", "ère", "ere") and number == 1:
            words = "première"
        elif suffix in ("nd", "nde") and number == 2:
            words = "second" if suffix == "nd" else "seconde"
        return words + match[3]
    if suffix == "a":
        return _feminine(words)
    if suffix == "er":  # Spanish apocope: 1.er piso → primer piso
        return re.sub(r"o$", "", words)
    return words


def _german_ordinal(match: re.Match[str]) -> str:
    before, after = (match[1] or "").lower(), match[3]
    if not (before in _DE_ARTICLES or after.lower() in _DE_MONTHS or after.islower()):
        return match[0]  # a cardinal at a sentence end: left to _NUMBER
    words = _words(int(_integer(match[2])), "de", "ordinal") + ("n" if before in _DE_WEAK else "")
    return f"{match[1] + ' ' if match[1] else ''}{words}"


def spell_numbers(text: str, language: str | None) -> str:
    """Digits spelled out in ``language`` (fr, es, de, it, pt); other languages unchanged."""
    lang = _profile(language)
    rules = _NUMBERS.get(lang or "")
    if rules is None or lang is None:
        return text
    text = unicodedata.normalize("NFKC", text)  # no-break spaces → spaces, ᵉʳ → er, º → o
    text = _PERCENT.sub(f" {rules.percent}", text)
    if any(c.isdigit() for c in text):
        if lang == "de":
            text = _DE_ORDINAL.sub(_german_ordinal, text)
        if rules.ordinal is not None:
            text = rules.ordinal.sub(lambda m: _ordinal(m, lang), text)

        def number(match: re.Match[str]) -> str:
            plain = match[1].isdigit()
            words = _spell(_integer(match[1]), lang, rules.year_form and plain)
            if match[2] is None:
                return words
            fraction = (" ".join(_words(int(d), lang) for d in match[2])
                        if rules.fraction_by_digit else _spell(match[2], lang))
            return f"{words} {rules.comma} {fraction}"

        text = _NUMBER.sub(number, text)
    for pattern, replacement in rules.fixes:
        text = pattern.sub(replacement, text)
    return text


# --- the normaliser ----------------------------------------------------------------------


@cache
def _normalizer(key: str | None) -> Callable[[str], str]:
    from transformers.models.whisper.english_normalizer import (
        BasicTextNormalizer,
        EnglishTextNormalizer,
    )

    if key == "en":
        return EnglishTextNormalizer(english_spelling_mapping()[0])
    return BasicTextNormalizer(remove_diacritics=False)


def _drop_accents(text: str) -> str:
    """``élève`` → ``eleve``: drops combining marks, keeps letters such as ß or ø."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))


def normalize(text: str, language: str | None = None, strip_accents: bool = False) -> str:
    """Lower-cased, punctuation-free text for scoring; equal texts score zero errors.

    English follows Whisper's English rules (contractions, numbers as digits,
    American spelling, no diacritics). Other languages keep their accents unless
    ``strip_accents``; apostrophes and hyphens become spaces (``l'homme`` →
    ``l homme``, ``vingt-deux`` → ``vingt deux``), digits become words for fr/es/de/it/pt.
    """
    text = _APOSTROPHES.sub("'", text or "").translate(_LIGATURES)
    text = _normalizer(language_key(language))(spell_numbers(text, language)).strip()
    return _drop_accents(text) if strip_accents else text


def normalizer_label(language: str | None) -> str:
    """Which rules :func:`normalize` applies to ``language``, in words, for a message that
    says what scored a text (``ert score`` when a file names no language)."""
    key = _profile(language)
    if key == "en":
        return "Whisper's English normalizer"
    if key in _NUMBERS:
        return (f"Whisper's basic normalizer with {english_name(key) or key} numbers spelled "
                "out")
    return "Whisper's basic normalizer (no language's rules: digits and spellings as written)"


def normalizer_info(strip_accents: bool = False) -> dict[str, Any]:
    """JSON-serialisable facts that fix the normaliser's output, to store with results.

    Two result files whose dicts differ were scored under different rules.
    """
    mapping, _ = english_spelling_mapping()
    return {
        "name": NORMALIZER_NAME,
        "version": NORMALIZER_VERSION,
        "num2words": _version("num2words"),
        "transformers": _version("transformers"),  # Whisper's normaliser code lives there
        "english_spelling": {"source": f"{SPELLING_PACKAGE}=={_version(SPELLING_PACKAGE)}"
                                       ":whisper/normalizers/english.json",
                             "sha256": SPELLING_SHA256, "entries": len(mapping)},
        "strip_accents": strip_accents,
    }


@cache
def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None
