"""Making a follow-up question standalone before it is searched and answered.

"And when does it open?" retrieves nothing useful by itself, and a small
model given the whole conversation tends to repeat its previous answer. So a
follow-up is rewritten from the previous question alone — its pronoun
replaced by what the previous question was about — and answered without the
chat history. Rules, not a model: a 135M model rewrites worse than they do,
and a rule's result is predictable and testable.
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
            rest = rest[:-1]
        phrase = " ".join(rest)
        if phrase:
            return phrase
    the = _THE_PHRASE.search(body)
    if the:
        return the.group(0)
    names = sorted(_NAME.findall(body[1:]), key=len, reverse=True)  # not the question word
    return names[0] if names else body


def standalone(question: str, previous: str | None) -> str:
    """``question`` rewritten to stand alone, given the previous user question."""
    if not previous or not previous.strip() or not is_followup(question):
        return question
    core = _LEADS.sub("", question).strip()
    core = core[:1].upper() + core[1:]
    subject = topic(previous)
    match = _PRONOUN.search(core)
    if match and match.group(1).lower() not in {"there", "this", "that"}:
        word = match.group(1).lower()
        if word in {"it", "its"} and " of " in subject:
            subject = subject.rsplit(" of ", 1)[1]  # "it": the thing, not "the director of" it
        replacement = f"{subject}'s" if word in {"its", "their", "his"} else subject
        return core[:match.start()] + replacement + core[match.end():]
    return f"{core} ({previous.strip()})"
