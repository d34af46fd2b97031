"""BM25 over chunks (``bm25s``), saved as numpy arrays and JSON: no pickle either way.

Dense MiniLM vectors miss what lexical matching gets for free: rare names,
numbers, codes ("B-214", "Ondine"). The index is rebuilt from the chunks on
every change (milliseconds for thousands of chunks), so it never drifts from
the FAISS index it sits beside.
"""

from __future__ import annotations

from core.files import temporary_sibling

import functools
import json
import os
import re
import shutil
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

IDS_FILE = "ids.json"
_WORD = re.compile(r"[^\W_]+(?:[-'’.,:][^\W_]+)*")


# bm25s's English list is Lucene's 33 words; questions also lean on question words and
# auxiliaries, which carry no topic: "what", "does" or "combien" must not make a chunk match.
QUESTION_WORDS = (
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "much", "many",
    "do", "does", "did", "done", "has", "have", "had", "can", "could", "would", "should", "may",
    "might", "must", "shall", "been", "being", "were", "its", "his", "her", "he", "she", "we",
    "you", "i", "me", "my", "our", "your", "them", "those", "than", "so", "about", "any",
    "quel", "quelle", "quels", "quelles", "qui", "quand", "où", "comment", "combien", "pourquoi",
    "lequel", "laquelle", "est-ce")


@functools.cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_FRENCH

    return frozenset(fold(w) for w in (*STOPWORDS_EN, *STOPWORDS_FRENCH, *QUESTION_WORDS))


def fold(word: str) -> str:
    """Lower case without accents: "Évian" and "evian" are one term."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _light_stem(word: str) -> str:
    """Plural and third-person "s" off long words ("opens" -> "open", "carries" -> "carry")."""
    if len(word) > 4 and word.endswith("ies") and word.isalpha():
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us")) and word.isalpha():
        return word[:-1]
    return word


_ROOT_SUFFIXES = ("ations", "ation", "ements", "ement", "ings", "ing", "ers", "er", "ors", "or",
                  "ed", "ees", "ee", "es", "e", "s")


def root(term: str) -> str:
    """A coarser stem, to match one predicate across its forms ("founded", "founder" ->
    "found"; "closes", "closing" -> "clos"; "directs", "director" -> "direct"; "fondée" ->
    "fond"). Not used for the BM25
    index, whose saved terms must not change."""
    for suffix in _ROOT_SUFFIXES:
        if term.endswith(suffix) and len(term) - len(suffix) >= 3 and term.isalpha():
            return term[:-len(suffix)]
    return term


def tokenize(text: str, stopwords: frozenset[str] | None = None) -> list[str]:
    """Folded, lightly stemmed terms without English/French stop words; numbers kept whole."""
    stop = _stopwords() if stopwords is None else stopwords
    terms = []
    for match in _WORD.finditer(text):
        term = fold(match.group(0)).replace("’", "'").strip(".,:'")
        term = term[:-2] if term.endswith("'s") else term  # possessive: "lab's" -> "lab"
        if term and term not in stop:
            terms.append(_light_stem(term))
    return terms


class LexicalIndex:
    """BM25 scores for a list of chunk ids, in that order."""

    def __init__(self, ids: Sequence[int] = (), retriever: object | None = None) -> None:
        self.ids = list(ids)
        self._retriever = retriever
        self._stop = _stopwords()

    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str]) -> LexicalIndex:
        import bm25s

        stop = _stopwords()
        retriever = None
        if ids:
            retriever = bm25s.BM25()
            retriever.index([tokenize(t, stop) or [""] for t in texts], show_progress=False)
        return cls(ids, retriever)

    def scores(self, query: str) -> dict[int, float]:
        """Chunk id -> BM25 score (only chunks sharing a term with the query)."""
        terms = tokenize(query, self._stop)
        if self._retriever is None or not terms:
            return {}
        values = np.asarray(self._retriever.get_scores(terms))  # type: ignore[attr-defined]
        return {cid: float(v) for cid, v in zip(self.ids, values, strict=True) if v > 0}

    def save(self, folder: Path) -> None:
        """Write beside the FAISS index; a temporary folder swapped in, so never half-written."""
        tmp = temporary_sibling(folder)
        tmp.mkdir(parents=True)
        if self._retriever is not None:
            self._retriever.save(str(tmp), show_progress=False)  # type: ignore[attr-defined]
        (tmp / IDS_FILE).write_text(json.dumps(self.ids), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """Read what :meth:`save` wrote (``allow_pickle`` stays off)."""
        import bm25s

        ids = json.loads((folder / IDS_FILE).read_text(encoding="utf-8"))
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise ValueError(f"{folder / IDS_FILE}: not a list of chunk ids")
        retriever = bm25s.BM25.load(str(folder), allow_pickle=False, show_progress=False) \
            if ids else None
        return cls(ids, retriever)
