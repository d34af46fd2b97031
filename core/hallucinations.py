"""Hallucinations counted apart from ordinary errors.

A model that writes "you" on silence, loops on one phrase, or bursts into words
nobody said is failing differently from one that mishears a word; WER mixes
them. Each sample gets flags, each model the count and rate of each flag and
its WER without the flagged samples beside the WER with them:

- ``non_speech``: text on a clip whose reference is empty (no speech in it);
- ``repetition_loop``: the decoding loop check the runner already uses
  (:func:`core.asr.runaway.is_runaway`);
- ``insertion_burst``: at least ``BURST`` consecutive inserted words;
- ``wrong_language``: the language the model decoded in is not the sample's.
"""

from __future__ import annotations

from core.asr.runaway import is_runaway
from core.error_anatomy import alignment, edits
from core.languages import language_key
from core.metrics import Alignment, SampleScore

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

BURST = 5  # consecutive inserted words that make a burst
FLAGS = ("non_speech", "repetition_loop", "insertion_burst", "wrong_language")


def flags(sample: SampleScore, decoded_language: str | None = None) -> list[str]:
    """The hallucination flags of one scored sample (its normalised texts, as scored)."""
    out = []
    hypothesis = sample.hypothesis_norm.strip()
    if not sample.reference_norm.strip() and hypothesis:
        out.append("non_speech")
    if hypothesis and is_runaway(sample.hypothesis):
        out.append("repetition_loop")
    if _longest_insertion(sample) >= BURST:
        out.append("insertion_burst")
    expected, decoded = language_key(sample.language), language_key(decoded_language)
    if hypothesis and expected and decoded and expected != decoded:
        out.append("wrong_language")
    return out


def _longest_insertion(sample: SampleScore) -> int:
    """The longest run of consecutive inserted words, word by word along the alignment."""
    longest = run = 0
    for op in alignment(sample).ops:
        if op.kind == "equal":
            run = 0
            continue
        for kind, _, _ in edits(Alignment((op,), 0, 0, 0, 0)):
            run = run + 1 if kind == "insert" else 0
            longest = max(longest, run)
    return longest


@dataclass
class HallucinationSummary:
    """A model's flags: how many samples carry each, the rate, and its WER with and
    without every flagged sample."""

    samples: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    flagged: int = 0  # samples with at least one flag
    wer: float | None = None
    wer_without_flagged: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(samples: Sequence[SampleScore],
              decoded: Mapping[str, str | None] | None = None) -> HallucinationSummary:
    """Count the flags over a model's scored samples; ``decoded``: the language each sample
    was decoded in, by id."""
    decoded = decoded or {}
    per = {s.id: flags(s, decoded.get(s.id)) for s in samples}
    counts = {f: sum(f in found for found in per.values()) for f in FLAGS}
    clean = [s for s in samples if not per[s.id]]
    n = len(samples)

    def wer(chosen: Sequence[SampleScore]) -> float | None:
        words = sum(s.ref_words for s in chosen)
        return sum(s.word_errors for s in chosen) / max(words, 1) if chosen else None

    return HallucinationSummary(
        samples=n, counts=counts,
        rates={f: round(c / n, 4) if n else 0.0 for f, c in counts.items()},
        flagged=sum(bool(found) for found in per.values()), wer=wer(samples),
        wer_without_flagged=wer(clean))
