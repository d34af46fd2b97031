"""Making a follow-up question standalone before it is searched and answered.

"And when does it open?" retrieves nothing useful by itself, and a small
model given the whole conversation tends to repeat its previous answer. So a
follow-up is rewritten from the previous question alone — its pronoun
replaced by what the previous question was about — and answered without the
chat history. Rules, not a model: a 135M model rewrites worse than they do,
and a rule's result is predictable and testable.

The subject ends where the previous question's own predicate begins: "When does
the Harbourview Chess Club open on weekdays?" is about "the Harbourview Chess
Club", so "And when does it close?" becomes "When does the Harbourview Chess
Club close?" — the new verb kept, the old one left behind. A French follow-up
with an inverted pronoun takes the subject before its verb ("À quelle heure la
médiathèque des Tilleuls ferme-t-elle ?").
"""

from __future__ import annotations

from core.rag.lexical import tokenize

import re

_LEADS = re.compile(r"^\s*(?:and|so|also|then|et|alors|aussi|what about|and what about)\b[\s,]*",
                    re.IGNORECASE)
_PRONOUNS_EN = r"it|its|they|them|their|he|him|his|she|her|this|that|there"
_PRONOUN = re.compile(rf"\b({_PRONOUNS_EN})\b", re.IGNORECASE)
_FRENCH_PRONOUN = re.compile(
    r"(?:\b(?:il|elle|ils|elles|lui|leur|y|ça|celui|celle)\b|-t-il|-t-elle)", re.IGNORECASE)
_AUX = re.compile(r"\b(?:does|do|did|is|are|was|were|can|could|will|would|has|have|had|should)\s+",
                  re.IGNORECASE)
_THE_PHRASE = re.compile(r"\b(?:the|a|an)\s+[^?]+$", re.IGNORECASE)
_NAME = re.compile(r"(?:[A-ZÀ-Ö][\w'’-]*)(?:\s+(?:(?:de|du|des|la|le|of|on)\s+)?[A-ZÀ-Ö][\w'’-]*)*")
_SHORT = 3  # a question with fewer content words than this needs its context
_CALENDAR_NAMES = re.compile(r"^(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)days?$|^(?:January|February|"
                             r"March|April|May|June|July|August|September|October|November|"
                             r"December)$")
_LINKS = frozenset({"de", "du", "des", "la", "le", "of", "on", "d'", "the"})  # inside a name
_PREPOSITIONS = frozenset({"on", "at", "in", "before", "after", "during", "for", "from", "to",
                           "until", "with", "by", "per"})
_DETERMINERS = frozenset({"a", "an", "the", "this", "that", "its", "their", "each", "every"})
_FR_INVERSION = re.compile(r"\b[\w'’]+-(?:t-)?(?:il|elle|ils|elles)\b", re.IGNORECASE)
_FR_SUBJECT_BEFORE = re.compile(r"\b((?:le|la|les|chaque|ce|cet|cette|ces)\s[^?]*?|l['’][^?]*?)"
                                r"\s+[\w'’]+-(?:t-)?(?:il|elle|ils|elles)\b", re.IGNORECASE)
_FR_SUBJECT_AFTER = re.compile(r"\b(?:le|la|les)\s[^?]*?[A-ZÀ-Ö][^?]*?(?=\s*\?|$)|"
                               r"\bl['’][^?]*?[A-ZÀ-Ö][^?]*?(?=\s*\?|$)")


def is_followup(question: str) -> bool:
    """Whether ``question`` leans on the previous one (a lead word, a pronoun, or too short)."""
    if _LEADS.match(question) or _PRONOUN.search(question) or _FRENCH_PRONOUN.search(question):
        return True
    return len(tokenize(question)) < _SHORT  # content words: the retrieval's own terms


def topic(question: str) -> str:
    """What ``question`` is about: the subject after its auxiliary, the last "the …" phrase,
    or its longest name ("the morning show on Radio Vallée", "the ferry Ondine")."""
    body = question.strip().rstrip("?").strip()
    aux = _AUX.search(body)
    if aux:
        rest = body[aux.end():].split()
        # "does the show start" -> drop the final verb; "is the director of X" -> keep all
        if aux.group(0).strip().lower() in {"does", "do", "did", "can", "could", "will", "would",
                                             "should"} and len(rest) > 1:
            named = _through_name(rest)
            if named:
                return named  # "the Harbourview Chess Club" (open on weekdays)
            rest = _without_complement(rest)[:-1]  # "the chain service take" (before a race)
        phrase = " ".join(rest)
        if phrase:
            return phrase
    the = _THE_PHRASE.search(body)
    if the:
        return the.group(0)
    names = sorted(_NAME.findall(body[1:]), key=len, reverse=True)  # not the question word
    return names[0] if names else body


def _without_complement(words: list[str]) -> list[str]:
    """The words before a closing prepositional phrase, the last word being a determiner's or
    a preposition's ("take before a race", "open on Sundays", "at 5 pm"); the verb stays last."""
    while len(words) > 2 and (words[-2].lower() in _DETERMINERS | _PREPOSITIONS
                              or words[-2][:1].isdigit()):
        cut = max((i for i, w in enumerate(words[:-1]) if i >= 2 and w.lower() in _PREPOSITIONS),
                  default=None)
        if cut is None:
            break
        words = words[:cut]
    return words


def _is_name(word: str) -> bool:
    return word[:1].isupper() and not _CALENDAR_NAMES.match(word.strip(",;:"))


def _through_name(words: list[str]) -> str | None:
    """The subject before its verb when it holds a name: up to the end of the first name
    ("the morning show on Radio Vallée" start), with the words after it but the verb — the
    word before the first preposition or determiner, else the last ("the ERT test lab" open
    on Saturdays); ``None`` when there is no name."""
    start = next((i for i, w in enumerate(words) if _is_name(w)), None)
    if start is None:
        return None
    end = start + 1
    while end < len(words):
        if _is_name(words[end]):
            end += 1
        elif words[end].lower() in _LINKS and end + 1 < len(words) and _is_name(words[end + 1]):
            end += 2
        else:
            break
    tail = words[end:]
    stop = next((i for i, w in enumerate(tail)
                 if w.lower() in _PREPOSITIONS | _DETERMINERS or w[:1].isdigit()), len(tail))
    end += max(stop - 1, 0)
    return " ".join(words[:end]).rstrip(",;:")


def french_subject(question: str) -> str | None:
    """A French question's subject: before an inverted verb ("le funiculaire a-t-il"), or
    the named phrase after the verb ("ouvre la médiathèque des Tilleuls")."""
    before = _FR_SUBJECT_BEFORE.search(question)
    if before:
        return before.group(1).strip()
    after = _FR_SUBJECT_AFTER.search(question)
    return after.group(0).strip() if after else None


def standalone(question: str, previous: str | None) -> str:
    """``question`` rewritten to stand alone, given the previous user question."""
    if not previous or not previous.strip() or not is_followup(question):
        return question
    core = _LEADS.sub("", question).strip()
    core = core[:1].upper() + core[1:]
    inverted = _FR_INVERSION.search(core)
    french = french_subject(previous) if inverted else None
    if inverted and french:  # complex inversion: "À quelle heure <subject> ferme-t-elle ?"
        return f"{core[:inverted.start()]}{french} {core[inverted.start():]}"
    subject = topic(previous)
    match = _PRONOUN.search(core)
    if match and match.group(1).lower() not in {"there", "this", "that"}:
        word = match.group(1).lower()
        if word in {"it", "its"} and " of " in subject:
            subject = subject.rsplit(" of ", 1)[1]  # "it": the thing, not "the director of" it
        replacement = f"{subject}'s" if word in {"its", "their", "his"} else subject
        return core[:match.start()] + replacement + core[match.end():]
    return f"{core} ({previous.strip()})"
