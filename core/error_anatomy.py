"""Which words a model gets wrong: substitution pairs, deleted and inserted words.

WER says how many errors; a fine-tuner asks which. Every figure here comes from
the same word alignment the WER is counted on (:func:`core.metrics.align` over
the normalised texts the scores used), so the counts add up to the model's
substitutions, deletions and insertions. A baseline/candidate pair adds the
words whose errors changed most between the two, on the samples both scored.
"""

from __future__ import annotations

from core.metrics import Alignment, SampleScore, align

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

TOP = 20  # rows per list


@dataclass(frozen=True)
class Count:
    """A word (``ref`` → ``hyp`` for a substitution) and how often, with its share of all
    the model's errors."""

    ref: str | None
    hyp: str | None
    count: int
    share: float


@dataclass
class ErrorAnatomy:
    errors: int = 0
    substitutions: list[Count] = field(default_factory=list)
    deletions: list[Count] = field(default_factory=list)
    insertions: list[Count] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def from_dict(data: dict[str, Any]) -> ErrorAnatomy:
    """An anatomy read back from a report (JSON)."""
    return ErrorAnatomy(data.get("errors", 0),
                        *[[Count(**c) for c in data.get(k, [])]
                          for k in ("substitutions", "deletions", "insertions")])


@dataclass(frozen=True)
class WordChange:
    """A reference word's errors (substituted or deleted) or a hypothesis word's (inserted)
    for the baseline and the candidate on the same samples."""

    word: str
    baseline: int
    candidate: int

    @property
    def change(self) -> int:
        return self.candidate - self.baseline


def alignment(sample: SampleScore) -> Alignment:
    """The word alignment of a scored sample, on the texts its score was counted on."""
    return align(sample.reference_norm, sample.hypothesis_norm, normalized=False)


def edits(result: Alignment) -> Iterable[tuple[str, str | None, str | None]]:
    """("substitute", ref, hyp), ("delete", ref, None), ("insert", None, hyp), word by word;
    a replaced run of unequal lengths pairs what it can and deletes or inserts the rest."""
    for op in result.ops:
        if op.kind == "equal":
            continue
        if op.kind == "delete":
            yield from (("delete", w, None) for w in op.ref)
        elif op.kind == "insert":
            yield from (("insert", None, w) for w in op.hyp)
        else:
            paired = min(len(op.ref), len(op.hyp))
            yield from (("substitute", r, h) for r, h in zip(op.ref, op.hyp, strict=False))
            yield from (("delete", w, None) for w in op.ref[paired:])
            yield from (("insert", None, w) for w in op.hyp[paired:])


def anatomy(samples: Iterable[SampleScore], top: int = TOP) -> ErrorAnatomy:
    """The most frequent substitution pairs, deleted and inserted words of a model."""
    subs: Counter[tuple[str, str]] = Counter()
    dels: Counter[str] = Counter()
    ins: Counter[str] = Counter()
    for sample in samples:
        for kind, ref, hyp in edits(alignment(sample)):
            if kind == "substitute":
                subs[(ref or "", hyp or "")] += 1
            elif kind == "delete":
                dels[ref or ""] += 1
            else:
                ins[hyp or ""] += 1
    errors = sum(subs.values()) + sum(dels.values()) + sum(ins.values())

    def share(count: int) -> float:
        return round(count / errors, 4) if errors else 0.0

    return ErrorAnatomy(
        errors=errors,
        substitutions=[Count(r, h, n, share(n)) for (r, h), n in _ranked(subs, top)],
        deletions=[Count(w, None, n, share(n)) for w, n in _ranked(dels, top)],
        insertions=[Count(None, w, n, share(n)) for w, n in _ranked(ins, top)])


def _ranked(counter: Counter[Any], top: int) -> list[tuple[Any, int]]:
    """Most frequent first, ties in alphabetical order (the same run, the same list)."""
    return sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))[:top]


def word_errors(samples: Iterable[SampleScore]) -> Counter[str]:
    """Errors per word: a reference word substituted or deleted, a hypothesis word inserted."""
    out: Counter[str] = Counter()
    for sample in samples:
        for _, ref, hyp in edits(alignment(sample)):
            out[ref if ref is not None else hyp or ""] += 1
    return out


def changed_words(baseline: Sequence[SampleScore], candidate: Sequence[SampleScore],
                  top: int = TOP) -> list[WordChange]:
    """The words whose errors changed most from baseline to candidate, on the samples both
    scored (largest change first; fixes and regressions alike)."""
    common = {s.id for s in baseline} & {s.id for s in candidate}
    before = word_errors(s for s in baseline if s.id in common)
    after = word_errors(s for s in candidate if s.id in common)
    changes = [WordChange(w, before[w], after[w]) for w in set(before) | set(after)
               if before[w] != after[w]]
    return sorted(changes, key=lambda c: (-abs(c.change), c.word))[:top]


def marked(sample: SampleScore) -> list[tuple[str, str | None, str | None]]:
    """A sample's alignment word by word, for display: ("equal", w, w), ("substitute",
    ref, hyp), ("delete", ref, None), ("insert", None, hyp)."""
    out: list[tuple[str, str | None, str | None]] = []
    for op in alignment(sample).ops:
        if op.kind == "equal":
            out += [("equal", w, w) for w in op.ref]
        else:
            out += list(edits(Alignment((op,), 0, 0, 0, 0)))
    return out


def render(result: ErrorAnatomy, model: str) -> str:
    """The ``ert score --errors`` text for one model."""
    lines = [f"{model}: {result.errors} word errors"]
    for title, rows in (("substitutions (ref → hyp)", result.substitutions),
                        ("deleted", result.deletions), ("inserted", result.insertions)):
        lines.append(f"  {title}:")
        for row in rows[:10]:
            word = f"{row.ref} → {row.hyp}" if row.ref and row.hyp else row.ref or row.hyp
            lines.append(f"    {row.count:5d}  {100 * row.share:5.1f} %  {word}")
        if not rows:
            lines.append("    —")
    return "\n".join(lines)
