"""Evidence: the sentences of the retrieved chunks that support an answer, verbatim.

A chunk is ~800 characters; the fact a user asked for is one sentence of it.
Sentences are ranked by signals fused by reciprocal rank: cosine similarity
to the question (MiniLM, the sentence read with its heading path), the
question's terms it contains, whether it holds the kind of fact the question
asks for ("who" a name, "how many" a number, "when" a day or time), and —
once there is an answer — the answer's own new terms it contains, which is
what ties an answer to the sentence it came from. The score shown is the cosine to the
question, and to the question plus the answer once there is one.
"""

from __future__ import annotations

from core.rag.chunking import HEADING_SEPARATOR
from core.rag.fusion import ranking, reciprocal_rank_fusion
from core.rag.grounding import asked_fact, holds_asked_fact
from core.rag.lexical import tokenize
from core.rag.store import Embedder, Hit

import re
from dataclasses import dataclass

import numpy as np

MAX_EVIDENCE = 4  # what a 135M model reads well, and a user at a glance
MIN_COSINE = 0.25  # a sentence less similar than this supports nothing
RELATIVE_FLOOR = 0.6  # of the best sentence's cosine (bench qa: 0.7 and 0.5 did worse)
# A sentence ends at . ! ? (or a line end) before a capital, digit or quote — not after
# an initial or a common abbreviation ("Dr. Lucie Ferrand", "St. Gallen", "e.g. this").
_ABBREV = "".join(rf"(?<!\b{re.escape(a)})" for a in (
    "Dr.", "Mr.", "Mrs.", "Ms.", "St.", "No.", "e.g.", "i.e.", "vs.", "M.", "Mme.", "cf."))
_INITIAL = r"(?<![\s(][A-Z]\.)"
_SENTENCE_END = re.compile(_ABBREV + _INITIAL + r"(?<=[.!?…])\s+(?=[\"'«“(]?[A-ZÀ-ÖØ-Þ0-9])|\n+")


@dataclass(frozen=True)
class Evidence:
    """One supporting sentence, quoted exactly as it is in the chunk."""

    file: str
    chunk: int
    sentence: str
    score: float

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "chunk": self.chunk, "sentence": self.sentence,
                "score": round(self.score, 4)}


@dataclass(frozen=True)
class _Candidate:
    hit: Hit
    title: str
    sentence: str


def split_sentences(text: str) -> list[str]:
    """Sentences and lines of ``text`` (whitespace trimmed, empty ones dropped)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _candidates(hits: list[Hit]) -> list[_Candidate]:
    found: list[_Candidate] = []
    seen: set[str] = set()
    for hit in hits:
        lines = hit.chunk.text.split("\n", 1)
        title, body = "", hit.chunk.text
        if len(lines) == 2 and not lines[0].rstrip().endswith((".", "!", "?", ":")) \
                and (HEADING_SEPARATOR in lines[0] or len(lines[0]) < 80):
            title, body = lines[0].strip(), lines[1]  # the heading path chunking put first
        for sentence in split_sentences(body):
            if len(tokenize(sentence)) < 2 or sentence in seen:
                continue  # a bare heading or a repeat from an overlapping chunk
            seen.add(sentence)
            found.append(_Candidate(hit, title, sentence))
    return found


def _term_overlap(terms: set[str], text: str) -> float:
    return len(terms & set(tokenize(text))) / len(terms) if terms else 0.0


def select_evidence(question: str, hits: list[Hit], embedder: Embedder, answer: str = "",
                    limit: int = MAX_EVIDENCE,
                    relative_floor: float | None = None) -> list[Evidence]:
    """The sentences of ``hits`` that best support an answer to ``question``, best first.

    Sentences under :data:`MIN_COSINE`, or under ``relative_floor`` × the best one's cosine,
    are left out unless they hold the answer's new terms.
    """
    candidates = _candidates(hits)
    if not candidates:
        return []
    relative_floor = RELATIVE_FLOOR if relative_floor is None else relative_floor
    query = f"{question} {answer}".strip()
    texts = [f"{c.title}. {c.sentence}" if c.title else c.sentence for c in candidates]
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    cosine = vectors @ np.asarray(embedder.embed_query(query), dtype=np.float32)
    question_terms = set(tokenize(question))
    answer_terms = set(tokenize(answer)) - question_terms
    signals = [
        {i: float(cosine[i]) for i in range(len(candidates))},
        {i: _term_overlap(question_terms, texts[i]) for i in range(len(candidates))},
    ]
    kind = asked_fact(question)
    if kind:
        signals.append({i: float(holds_asked_fact(kind, candidates[i].sentence, question))
                        for i in range(len(candidates))})
    if answer_terms:
        signals.append({i: _term_overlap(answer_terms, candidates[i].sentence)
                        for i in range(len(candidates))})
    order = reciprocal_rank_fusion([ranking({i: v for i, v in s.items() if v > 0})
                                    for s in signals])
    best = float(cosine.max())
    chosen: list[Evidence] = []
    for i in order:
        score = float(cosine[i])
        if score < max(MIN_COSINE, relative_floor * best) and not (
                answer_terms and signals[-1][i] > 0):
            continue
        hit = candidates[i].hit
        chosen.append(Evidence(hit.chunk.source, hit.chunk.index, candidates[i].sentence, score))
        if len(chosen) == limit:
            break
    return chosen
