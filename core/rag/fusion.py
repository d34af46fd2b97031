"""Combining rankings: reciprocal rank fusion and a floor relative to the best hit.

RRF (Cormack et al., 2009) adds ``1 / (k + rank)`` over the rankings a chunk
appears in: it needs no score calibration between BM25 (unbounded) and cosine
(-1..1), which is why hybrid search engines use it. The floor then drops what
neither ranking found nearly as relevant as its best hit, so an unrelated file
is not cited beside the right one just because ``k`` asked for more.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

RRF_K = 60
RELATIVE_FLOOR = 0.6  # of the best score, in each ranking

Key = TypeVar("Key", bound=Hashable)


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Key]], k: int = RRF_K) -> dict[Key, float]:
    """Key -> fused score, from rankings best-first; keys missing from a ranking get nothing."""
    fused: dict[Key, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    return dict(sorted(fused.items(), key=lambda item: -item[1]))


def ranking(scores: Mapping[Key, float]) -> list[Key]:
    """Keys best-first (ties in insertion order)."""
    return sorted(scores, key=lambda key: -scores[key])


def above_relative_floor(key: Key, score_maps: Sequence[Mapping[Key, float]],
                         ratio: float = RELATIVE_FLOOR) -> bool:
    """Whether ``key`` scores at least ``ratio`` × the best in one of the score maps."""
    for scores in score_maps:
        if key in scores and scores:
            best = max(scores.values())
            if best > 0 and scores[key] >= ratio * best:
                return True
    return False
