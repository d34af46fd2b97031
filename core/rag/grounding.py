"""Is an answer supported by the retrieved text? The check behind "not in the documents".

A 135M model asked about something the documents do not say rarely says so:
it answers with a fact from a neighbouring sentence ("the Col du Loup is at
2,877 metres" — the observatory's altitude) or from nowhere ("42 MHz"). So an
answer counts as grounded only when one retrieved chunk both

* holds every *fact* the answer adds to the question — numbers (also spelled
  out: "19" for "nineteen"), names, weekdays and months — and, for an answer
  adding no such fact, most of its other new words; and
* is about the question: it holds the question's names and more than half of
  its other content words, or half and a cosine similarity of at least
  :data:`TOPIC_COSINE`, or (when the question names something) a cosine of at
  least :data:`NAMED_TOPIC_COSINE` — "directs" for "director" (headings count:
  a chunk keeps its heading path).
"""

from __future__ import annotations

from core.rag.lexical import fold, tokenize
from core.rag.store import Hit

import functools
import re
from dataclasses import dataclass

_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-ZÀ-Ö][\w'’-]*")
_CALENDAR = frozenset((
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
    "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi",
    "dimanche", "janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout",
    "septembre", "octobre", "novembre", "decembre"))
_NOT_NAMES = frozenset({"am", "pm", "i"})  # capitalised, but no fact
TOPIC_SHARE = 0.5  # of the question's content words in the chunk: more, or this and ...
TOPIC_COSINE = 0.55  # ... a chunk this similar to the question (a paraphrase: "work"/"employs")
NAMED_TOPIC_COSINE = 0.6  # a chunk holding all the question's names and this similar to it


@dataclass(frozen=True)
class Support:
    """Why an answer is (not) grounded; ``chunk`` is the chunk that supports it."""

    grounded: bool
    reason: str
    chunk: Hit | None = None


def _numbers(text: str) -> set[str]:
    return {m.group(0).replace(",", "").rstrip(".:") for m in _NUMBER.finditer(text)}


@functools.cache
def _number_words() -> dict[str, str]:
    """English and French number words up to 100, as terms, to their digits."""
    from num2words import num2words

    return {fold(num2words(n, lang=lang)): str(n) for n in range(101) for lang in ("en", "fr")}


def _spelled_numbers(text: str) -> set[str]:
    """Digits for the number words of ``text`` ("nineteen" -> "19")."""
    words = _number_words()
    return {words[t] for t in tokenize(text, frozenset()) if t in words}


def _names(text: str) -> set[str]:
    """Capitalised words not opening a sentence, as terms ("Ondine", "Lausanne")."""
    found = " ".join(m.group(0) for m in _NAME.finditer(text.strip()))
    return set(tokenize(found, frozenset())) - _NOT_NAMES


def facts(text: str) -> set[str]:
    """The fact terms of ``text``: numbers, names, weekdays and months."""
    calendar = {t for t in tokenize(text, frozenset()) if t in _CALENDAR}
    return _numbers(text) | _names(text) | calendar


_ASKS = (  # what kind of fact a question asks for, by its opening words (English, French)
    ("name", re.compile(r"^\s*(?:who|whom|whose|qui)\b", re.IGNORECASE)),
    ("time", re.compile(r"^\s*(?:when|what time|which days?|on which days?|what days?|quand|"
                        r"quel jour|quels jours|à quelle heure)\b", re.IGNORECASE)),
    ("number", re.compile(r"^\s*(?:how (?:many|much|long|tall|high|far|old|big|heavy)|"
                          r"combien|quelle (?:altitude|longueur|durée))\b", re.IGNORECASE)),
)


def asked_fact(question: str) -> str | None:
    """"name", "time" or "number" when the question's form says which, else ``None``."""
    for kind, pattern in _ASKS:
        if pattern.search(question):
            return kind
    return None


def holds_asked_fact(kind: str, text: str, question: str) -> bool:
    """Whether ``text`` holds a fact of ``kind`` that the question does not already name."""
    known = set(tokenize(question, frozenset()))
    if kind == "name":
        return bool(_names(text) - known - _CALENDAR)
    numbers = _numbers(text) | _spelled_numbers(text)
    if kind == "number":
        return bool(numbers - known)
    calendar = {t for t in tokenize(text, frozenset()) if t in _CALENDAR}
    return bool((calendar | numbers) - known)


def _chunk_facts(text: str) -> set[str]:
    return _numbers(text) | _spelled_numbers(text) | set(tokenize(text, frozenset()))


def about_question(question: str, hit: Hit) -> bool:
    """Whether the chunk holds the question's names and enough of its content words."""
    terms = set(tokenize(hit.chunk.text))
    names = {n for n in _names(question) if n not in _CALENDAR}
    if not names <= (terms | set(tokenize(hit.chunk.text, frozenset()))):
        return False
    content = set(tokenize(question)) - names
    if not content:
        return True
    share = len(content & terms) / len(content)
    return (share > TOPIC_SHARE or (share == TOPIC_SHARE and hit.score >= TOPIC_COSINE)
            or (bool(names) and hit.score >= NAMED_TOPIC_COSINE))


def support(answer: str, question: str, hits: list[Hit]) -> Support:
    """Whether some retrieved chunk holds the answer's new facts and is about the question."""
    new_facts = facts(answer) - facts(question) - set(tokenize(question, frozenset()))
    new_words = set(tokenize(answer)) - set(tokenize(question))
    if not new_facts and not new_words:
        return Support(False, "the answer adds nothing to the question")
    for hit in hits:
        text = hit.chunk.text
        known = _chunk_facts(text)
        if new_facts:
            if not new_facts <= known:
                continue
        elif len(new_words & known) * 2 <= len(new_words):
            continue
        if about_question(question, hit):
            return Support(True, "supported", hit)
    if new_facts:
        return Support(False, f"no retrieved passage about the question says "
                              f"{', '.join(sorted(new_facts))}")
    return Support(False, "no retrieved passage about the question supports the answer")
