"""Is an answer supported by the retrieved text? The check behind "not in the documents".

A 135M model asked about something the documents do not say rarely says so:
it answers with a fact from a neighbouring sentence ("the Col du Loup is at
2,877 metres" — the observatory's altitude) or from nowhere ("42 MHz"). So an
answer counts as grounded only when one retrieved chunk both

* holds every *fact* the answer adds to the question — numbers (by value:
  "14" is "fourteen" and "quatorze", :mod:`core.rag.numbers`), names, weekdays
  and months — and most of its other new words (beside a fact, half of them,
  one spared: "meters" for "metres"); and
* is about the question: it holds the question's names, and more than half of
  its *predicate* terms (its content words less names, question phrase and
  number words: "founded", "close"), or half and a cosine similarity of at
  least :data:`TOPIC_COSINE`, or one and (when the question names something) a
  cosine of at least :data:`NAMED_TOPIC_COSINE` — "directs" for "director"
  (headings count: a chunk keeps its heading path).

Facts alone let wrong answers through, so three more rules. The answer must be
of the *kind* asked — a person for "who", a day for "which day", a time of day
or a year for "when", a quantity for "how many" — or a paraphrase such as "the
first day of the week" passes for a weekday. It must not be *contradicted*:
when a clause holds the question's rarest predicate terms and a fact of the
kind asked, the answer must share a fact with it — the chief executive named
in another sentence is no answer to "Who founded …?", the opening time none to
"When does it close?". And its fact must be *anchored*: in a sentence that
itself holds a predicate term, not only under a heading that does.
"""

from __future__ import annotations

from core.rag.chunking import split_heading, split_sentences
from core.rag.lexical import fold, root, tokenize
from core.rag.numbers import is_number_word, number_values
from core.rag.store import Hit

import re
from dataclasses import dataclass

_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-ZÀ-Ö][\w'’-]*")
_CALENDAR = frozenset((
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
    "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi",
    "dimanche", "janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout",
    "septembre", "octobre", "novembre", "decembre"))
_NOT_NAMES = frozenset({"am", "pm", "i"})  # capitalised, but no fact
_DAY_WORDS = frozenset({"weekday", "weekend", "daily", "everyday"})  # an answer to "which day"
_TIME_WORDS = frozenset({"noon", "midnight", "midi", "minuit"})  # an answer to "when"
# Not the predicate: what the question phrase asks for, and words every sentence could carry.
_NOT_PREDICATE = frozenset({"time", "day", "year", "date", "heure", "jour", "temp", "annee",
                            "each", "every", "get", "chaque", "chacun", "chacune", "peut",
                            "peuvent", "doit", "doivent"})
_ELISIONS = frozenset({"l", "d", "qu", "jusqu", "lorsqu", "puisqu", "s", "n", "c", "j", "m", "t"})
_INVERTED = frozenset({"t", "il", "elle", "ils", "elles", "on"})  # "ferme-t-elle" -> "ferme"
# A time of day or a year: "6:30", "9 h 30", "5 pm", "19h", "1998"; spelled: "six o'clock".
_CLOCK = re.compile(r"\b\d{1,2}(?:[:h.]\d{2}(?!\d)|\s*(?:am|pm|a\.m\.|p\.m\.|h|heures?|o'clock)\b)|"
                    r"\b(?:1[0-9]|20|21)\d{2}\b|\b[a-z-]+\s+(?:o'clock|am|pm|heures?)\b|"
                    r"\b(?:half|quarter)\s+(?:past|to)\s+[a-z-]+", re.IGNORECASE)
_CLAUSE_END = re.compile(r";\s+|,?\s+(?:and|but|while|whereas|et|mais|tandis que)\s+")
KIND_LABELS = {"name": "person", "day": "day", "time": "time or date", "number": "quantity"}
PREDICATE_SHARE = 0.5  # of the best answering clause's predicate weight, for a terse answer
_QUOTED = re.compile(r"[\"“«][^\"”»]*[\"”»]")  # a quoted title ("Bonjour la Vallée") is no person
TOPIC_SHARE = 0.5  # of the question's content words in the chunk: more, or this and ...
TOPIC_COSINE = 0.55  # ... a chunk this similar to the question (a paraphrase: "work"/"employs")
NAMED_TOPIC_COSINE = 0.6  # a chunk holding all the question's names and this similar to it


@dataclass(frozen=True)
class Support:
    """Why an answer is (not) grounded; ``chunk`` is the chunk that supports it."""

    grounded: bool
    reason: str
    chunk: Hit | None = None


def _names(text: str) -> set[str]:
    """Capitalised words not opening a sentence, as terms ("Ondine", "Lausanne")."""
    found = " ".join(m.group(0) for m in _NAME.finditer(text.strip()))
    return set(tokenize(found, frozenset())) - _NOT_NAMES


def facts(text: str) -> set[str]:
    """The fact terms of ``text``: numbers (values), names, weekdays and months."""
    calendar = {t for t in tokenize(text, frozenset()) if t in _CALENDAR}
    return number_values(text, weak=False) | _names(text) | calendar


_ASKS = (  # what kind of fact a question asks for, by its opening words (English, French)
    ("name", re.compile(r"^\s*(?:who|whom|whose|qui)\b", re.IGNORECASE)),
    ("day", re.compile(r"^\s*(?:(?:on|in) )?(?:which|what) days?\b|^\s*(?:quel|quels) jours?\b",
                       re.IGNORECASE)),
    ("time", re.compile(r"^\s*(?:when|what time|(?:in )?(?:which|what) (?:year|date)|quand|"
                        r"(?:à|a) quelle (?:heure|date)|en quelle année)\b", re.IGNORECASE)),
    ("number", re.compile(r"^\s*(?:how (?:many|much|long|tall|high|far|old|big|heavy)|"
                          r"combien(?: de temps)?|quelle (?:altitude|longueur|durée))\b",
                          re.IGNORECASE)),
)


def asked_fact(question: str) -> str | None:
    """"name", "day", "time" or "number" when the question's form says which, else ``None``."""
    for kind, pattern in _ASKS:
        if pattern.search(question):
            return kind
    return None


def kind_facts(kind: str, text: str, question: str) -> set[str]:
    """The facts of ``kind`` in ``text`` that the question does not already name."""
    known = set(tokenize(question, frozenset())) | number_values(question)
    terms = set(tokenize(text, frozenset()))
    if kind == "name":
        return _names(_QUOTED.sub(" ", text)) - known - _CALENDAR
    numbers = number_values(text, weak=False)
    if kind == "number":
        return numbers - known
    if kind == "day":  # a weekday, "weekends", or a day of the month ("the 3rd")
        dates = {n for n in numbers if n.isdigit() and 1 <= int(n) <= 31}
        return ({t for t in terms if t in _CALENDAR or t in _DAY_WORDS} | dates) - known
    clock = {v for m in _CLOCK.finditer(text) for v in number_values(m.group(0))}
    return ({t for t in terms if t in _CALENDAR or t in _TIME_WORDS} | clock) - known


def holds_asked_fact(kind: str, text: str, question: str) -> bool:
    """Whether ``text`` holds a fact of ``kind`` that the question does not already name."""
    return bool(kind_facts(kind, text, question))


def _words(text: str) -> list[str]:
    """Content terms, French elisions and inverted pronouns off ("jusqu'au" -> "au", a stop
    word; "ferme-t-elle" -> "ferme"), number words and digits left to :func:`number_values`."""
    found = []
    for term in tokenize(text):
        head, apostrophe, tail = term.partition("'")
        if apostrophe and head in _ELISIONS:
            term = tail
        parts = term.split("-")
        if len(parts) > 1 and parts[-1] in _INVERTED:
            term = parts[0]
        found += [t for t in tokenize(term) if not t[0].isdigit() and not is_number_word(t)]
    return found


def predicate_terms(question: str) -> set[str]:
    """The roots of what the question asks about its subject ("founded", "close"): its
    content words less its names, its question phrase and number words."""
    kind = asked_fact(question)
    body = question
    for found_kind, pattern in _ASKS:
        if found_kind == kind:
            body = pattern.sub("", question, count=1)
    names = {n for n in _names(question) if n not in _CALENDAR}
    return {root(t) for t in _words(body) if t not in names and t not in _NOT_PREDICATE}


def content_roots(text: str) -> set[str]:
    """Roots of the content words of ``text``, numbers as values ("14" and "fourteen" agree)."""
    return {root(t) for t in _words(text)} | number_values(text)


def clauses(sentence: str) -> list[str]:
    """A sentence cut at ";" and conjunctions: "opens at 5 pm" | "closes at 11 pm" — not
    inside a number ("three hundred and forty", "vingt et un")."""
    found: list[str] = []
    start = 0
    for match in _CLAUSE_END.finditer(sentence):
        before, after = sentence[start:match.start()].split(), sentence[match.end():].split()
        if before and after and is_number_word(fold(before[-1].strip(".,;:"))) \
                and is_number_word(fold(after[0].strip(".,;:"))):
            continue
        found.append(sentence[start:match.start()])
        start = match.end()
    return [c for c in [*found, sentence[start:]] if c.strip()]


def about_question(question: str, hit: Hit) -> bool:
    """Whether the chunk holds the question's names, one of its predicate terms (a chunk
    about Velmora that never mentions a logo is no answer to "Who designed Velmora's
    logo?") and enough of its content words."""
    names = {n for n in _names(question) if n not in _CALENDAR}
    if not names <= set(tokenize(hit.chunk.text, frozenset())):
        return False
    terms, content = content_roots(hit.chunk.text), predicate_terms(question)
    if content and not content & terms:
        return False
    if not content:
        return True
    share = len(content & terms) / len(content)
    return (share > TOPIC_SHARE or (share == TOPIC_SHARE and hit.score >= TOPIC_COSINE)
            or (bool(names) and hit.score >= NAMED_TOPIC_COSINE))


def _chunk_facts(text: str) -> set[str]:
    return number_values(text) | set(tokenize(text, frozenset()))


def answer_kind_facts(kind: str, answer: str, question: str) -> set[str]:
    """:func:`kind_facts` of an answer, whose opening word may be a name ("Okafor.")."""
    found = kind_facts(kind, answer, question)
    if kind == "name" and answer.strip()[:1].isupper():
        opening = set(tokenize(answer.strip().split(" ", 1)[0]))  # stop words drop "The"
        found |= opening - set(tokenize(question, frozenset())) - _CALENDAR - _NOT_NAMES
    return found


def predicate_weights(predicate: set[str], texts: list[str]) -> dict[str, float]:
    """Each predicate term weighed by its rarity among ``texts`` (1 / the texts holding
    it): "returned" in one sentence outweighs "repairs" in three."""
    roots = [content_roots(text) for text in texts]
    return {term: 1.0 / max(1, sum(term in r for r in roots)) for term in predicate}


@dataclass(frozen=True)
class Clause:
    """A clause of a retrieved sentence that holds a fact of the kind a question asks."""

    text: str
    held: frozenset[str]  # the question's predicate terms it holds (its heading's too)
    own: frozenset[str]  # ... those it holds itself
    facts: frozenset[str]  # its facts of the kind asked, and those of its continuation
    score: float  # the rarity-weighted predicate terms it holds
    full: bool  # its sentence holds all the predicate terms, or all but one of three or more


def answer_clauses(question: str, hits: list[Hit]) -> list[Clause]:
    """The clauses of ``hits`` holding a fact of the kind asked and a predicate term of their
    own, each with the facts of the clauses after it that open with one ("every Wednesday"
    | "and Saturday from June …")."""
    kind, predicate = asked_fact(question), predicate_terms(question)
    if kind is None or not predicate:
        return []
    sentences = []
    for hit in hits:
        title, body = split_heading(hit.chunk.text)
        sentences += [(title, s) for s in split_sentences(body)]
    weights = predicate_weights(predicate, [f"{title} {s}" for title, s in sentences])
    found: list[Clause] = []
    for title, sentence in sentences:
        title_roots = content_roots(title)
        full = len(predicate - content_roots(sentence) - title_roots) <= (len(predicate) >= 3)
        parts = clauses(sentence)
        own = [predicate & content_roots(part) for part in parts]
        for i, part in enumerate(parts):
            facts_ = kind_facts(kind, part, question)
            if not facts_ or not own[i]:
                continue
            for later, rest in zip(own[i + 1:], parts[i + 1:], strict=True):
                if later or not _opens_with_fact(kind, rest, question):
                    break
                facts_ |= kind_facts(kind, rest, question)
            held = own[i] | (predicate & title_roots)
            found.append(Clause(part.strip(), frozenset(held), frozenset(own[i]),
                                frozenset(facts_), sum(weights[t] for t in held), full))
    return found


def _opens_with_fact(kind: str, clause: str, question: str) -> bool:
    """Whether a clause starts with a fact of ``kind``: "Saturday from June …" continues the
    clause before it, "closes at 11 pm" does not."""
    words = clause.split()
    if kind == "name":
        return bool(words) and words[0][:1].isupper() and bool(
            set(tokenize(words[0])) - set(tokenize(question, frozenset())))
    return bool(kind_facts(kind, "— " + " ".join(words[:2]), question))


def anchored(facts_: set[str], question: str, hits: list[Hit]) -> bool:
    """Whether one of ``facts_`` sits in a sentence that itself holds one of the question's
    predicate terms (a chunk's heading is not enough): "trois semaines" is no subscription
    price when its sentence is about loans."""
    predicate = predicate_terms(question)
    if not predicate or not facts_:
        return True
    for hit in hits:
        if not about_question(question, hit):
            continue
        for sentence in split_sentences(split_heading(hit.chunk.text)[1]):
            if predicate & content_roots(sentence) and facts_ & _chunk_facts(sentence):
                return True
    return False


def contradiction(answer: str, question: str, hits: list[Hit]) -> str | None:
    """The clause that best answers the question, when no clause holding the answer's facts
    holds the predicate as well: the rarer predicate terms the answer itself uses ("They are
    returned on Monday" against "collected on Monday and returned on Thursday"), or, for an
    answer using none, at least :data:`PREDICATE_SHARE` of the best clause's weight."""
    kind, predicate = asked_fact(question), predicate_terms(question)
    if kind is None or not predicate:
        return None
    usable = [h for h in hits if about_question(question, h)]
    found = answer_clauses(question, usable)
    answering = [c for c in found if c.full]
    if not answering:
        return None
    best = max(answering, key=lambda c: c.score)
    weights = predicate_weights(predicate, [
        f"{split_heading(h.chunk.text)[0]} {s}" for h in usable
        for s in split_sentences(split_heading(h.chunk.text)[1])])
    floor = min(weights.values())
    said = {t for t in content_roots(answer) & predicate if weights[t] > floor}
    given = answer_kind_facts(kind, answer, question)
    for clause in found:
        if not clause.facts & given:
            continue
        if clause.held & said if said else clause.score >= PREDICATE_SHARE * best.score:
            return None
    return best.text


def support(answer: str, question: str, hits: list[Hit]) -> Support:
    """Whether some retrieved chunk about the question holds the answer's new facts and
    words, the answer is of the kind asked, and no clause answers otherwise."""
    kind = asked_fact(question)
    if kind is not None and not answer_kind_facts(kind, answer, question):
        return Support(False, f"the answer names no {KIND_LABELS[kind]}")
    new_facts = (facts(answer) - facts(question) - set(tokenize(question, frozenset()))
                 - number_values(question))
    new_words = (content_roots(answer) - content_roots(question) - new_facts
                 - {root(f) for f in new_facts})
    if not new_facts and not new_words:
        return Support(False, "the answer adds nothing to the question")
    other = contradiction(answer, question, hits)
    if other is not None:
        return Support(False, f"the documents say “{other}”")
    given = answer_kind_facts(kind, answer, question) if kind is not None else new_facts
    if not anchored(given, question, hits):
        return Support(False, f"{', '.join(sorted(given))}: in no retrieved sentence on what "
                              f"the question asks")
    for hit in hits:
        text = hit.chunk.text
        if not new_facts <= _chunk_facts(text):
            continue
        matched = len(new_words & content_roots(text)) * 2
        if (matched < len(new_words) - 1 if new_facts else matched <= len(new_words)):
            continue  # beside a fact, half of the other new words ("meters": one spared)
        if about_question(question, hit):
            return Support(True, "supported", hit)
    if new_facts:
        return Support(False, f"no retrieved passage about the question says "
                              f"{', '.join(sorted(new_facts))}")
    return Support(False, "no retrieved passage about the question supports the answer")
