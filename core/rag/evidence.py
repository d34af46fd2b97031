"""Evidence: the sentences of the retrieved chunks that support an answer, verbatim.

A chunk is ~800 characters; the fact a user asked for is one sentence of it.
Sentences are ranked by signals fused by reciprocal rank: cosine similarity
to the question (MiniLM, the sentence read with its heading path), the
question's terms it contains, its *predicate* terms ("founded", "close": what
the question asks of its subject, weighed by rarity and counted twice, so the
founding sentence outranks the one that merely names the company), whether it
holds the kind of fact the question asks for ("who" a name, "how many" a
number, "when" a day or time), and — once there is an answer — the answer's
own new terms it contains, which is what ties an answer to the sentence it
came from. Numbers count by value ("14" and "fourteen" agree). The score shown
is the cosine to the question, and to the question plus the answer once there
is one.

:func:`answering_sentence` is the evidence quoted when a draft is refused: the
best sentence that holds the predicate and a fact of the kind asked, in a chunk
about the question.
"""

from __future__ import annotations

from core.rag.chunking import split_heading, split_sentences
from core.rag.fusion import ranking, reciprocal_rank_fusion
from core.rag.grounding import (
    about_question,
    asked_fact,
    content_roots,
    holds_asked_fact,
    predicate_terms,
    predicate_weights,
)
from core.rag.lexical import tokenize
from core.rag.store import Embedder, Hit

from dataclasses import dataclass

import numpy as np

MAX_EVIDENCE = 4  # what a 135M model reads well, and a user at a glance
MIN_COSINE = 0.25  # a sentence less similar than this supports nothing
RELATIVE_FLOOR = 0.6  # of the best sentence's cosine (bench qa: 0.7 and 0.5 did worse)


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


def _candidates(hits: list[Hit]) -> list[_Candidate]:
    found: list[_Candidate] = []
    seen: set[str] = set()
    for hit in hits:
        title, body = split_heading(hit.chunk.text)  # the heading path chunking put first
        for sentence in split_sentences(body):
            if len(tokenize(sentence)) < 2 or sentence in seen:
                continue  # a bare heading or a repeat from an overlapping chunk
            seen.add(sentence)
            found.append(_Candidate(hit, title, sentence))
    return found


def _share(terms: set[str], held: set[str]) -> float:
    """The share of ``terms`` (:func:`content_roots`) in ``held``."""
    return len(terms & held) / len(terms) if terms else 0.0


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
    question_terms = content_roots(question)
    answer_terms = content_roots(answer) - question_terms
    roots = [content_roots(text) for text in texts]
    weights = predicate_weights(predicate_terms(question), texts)
    total = sum(weights.values())
    predicate = {i: sum(w for t, w in weights.items() if t in roots[i]) / total
                 for i in range(len(candidates))} if total else {}
    signals = [
        {i: float(cosine[i]) for i in range(len(candidates))},
        {i: _share(question_terms, roots[i]) for i in range(len(candidates))},
        predicate, predicate,  # counted twice: the predicate outweighs a shared subject
    ]
    kind = asked_fact(question)
    if kind:
        signals.append({i: float(holds_asked_fact(kind, candidates[i].sentence, question))
                        for i in range(len(candidates))})
    if answer_terms:
        signals.append({i: _share(answer_terms, content_roots(candidates[i].sentence))
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


def answering_sentence(question: str, evidence: list[Evidence],
                       hits: list[Hit]) -> Evidence | None:
    """The best evidence sentence that answers ``question``: from a chunk about it, holding
    a fact of the kind asked (when the question says) and its predicate terms (all of them,
    or all but one of three or more; the heading counts, but one must be the sentence's
    own) — else ``None``: the documents do not say."""
    kind, predicate = asked_fact(question), predicate_terms(question)
    chunks = {(h.chunk.source, h.chunk.index): h for h in hits}
    for item in evidence:
        hit = chunks.get((item.file, item.chunk))
        if hit is None or not about_question(question, hit):
            continue
        if kind is not None and not holds_asked_fact(kind, item.sentence, question):
            continue
        own = predicate & content_roots(item.sentence)
        held = own | (predicate & content_roots(split_heading(hit.chunk.text)[0]))
        missing = len(predicate) - len(held)
        if kind is None and not predicate:
            continue  # nothing to tell an answer from a sentence that merely shares words
        if (own or not predicate) and (missing == 0 or (missing == 1 and len(predicate) >= 3)):
            return item
    return None


__all__ = ["Evidence", "answering_sentence", "select_evidence", "split_sentences"]
