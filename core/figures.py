"""Every figure ERT reports about a model's transcripts, declared once.

A figure is a name, a label, a unit, a direction and a function from a model's
scored samples to one number (and, where it has one, from one sample to its
own value). Results, ``ert score``, the CLI tables, the CSV/JSON files and both
pages loop over :data:`FIGURES`; adding a figure is one declaration here (or in
any module imported before the outputs are made) plus its function::

    @register_figure("deletion_rate", "deleted %", unit="%", scale=100,
                     per_sample=lambda s, _: s.deletions / max(s.ref_words, 1))
    def deletion_rate(samples: Sequence[Scored]) -> float | None:
        words = sum(s.ref_words for s, _ in samples)
        return sum(s.deletions for s, _ in samples) / words if words else None

Speed and memory figures are not here: they come from the run, not the
transcripts (``core.evaluation.speed``).
"""

from __future__ import annotations

from core.hallucinations import flags
from core.metrics import SampleScore
from core.phrasing import MISSING

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Scored = tuple[SampleScore, Mapping[str, Any]]  # a scored sample and its record's fields
Aggregate = Callable[[Sequence[Scored]], float | None]
PerSample = Callable[[SampleScore, Mapping[str, Any]], float | None]


@dataclass(frozen=True)
class Figure:
    name: str  # its key in JSON, CSV and code
    label: str  # its column title in tables ("WER %")
    aggregate: Aggregate  # the corpus figure from a model's scored samples
    unit: str = ""  # "%", "", "s", …
    lower_is_better: bool = True
    scale: float = 1.0  # shown as value × scale (fractions as %)
    digits: int = 1
    per_sample: PerSample | None = None  # the sample's own value, when it has one

    def show(self, value: float | None) -> str:
        """The value as tables print it: "18.8", MISSING."""
        return MISSING if value is None else f"{value * self.scale:.{self.digits}f}"


FIGURES: dict[str, Figure] = {}


def register_figure(name: str, label: str, *, unit: str = "", lower_is_better: bool = True,
                    scale: float = 1.0, digits: int = 1, per_sample: PerSample | None = None
                    ) -> Callable[[Aggregate], Aggregate]:
    """Declare a figure (see the module's docstring); a later declaration of the same name
    replaces the earlier one."""
    def declare(aggregate: Aggregate) -> Aggregate:
        FIGURES[name] = Figure(name, label, aggregate, unit, lower_is_better, scale, digits,
                               per_sample)
        return aggregate
    return declare


def figures_of(samples: Sequence[Scored]) -> dict[str, float | None]:
    """Every registered figure of one model's scored samples."""
    return {name: (f.aggregate(samples) if samples else None) for name, f in FIGURES.items()}


def sample_figures(sample: SampleScore, fields: Mapping[str, Any]) -> dict[str, float | None]:
    """A sample's own value of every figure that has one."""
    return {name: f.per_sample(sample, fields) for name, f in FIGURES.items()
            if f.per_sample is not None}


def _ratio(errors: Callable[[SampleScore], int], total: Callable[[SampleScore], int]
           ) -> Aggregate:
    def corpus(samples: Sequence[Scored]) -> float | None:
        return sum(errors(s) for s, _ in samples) / max(sum(total(s) for s, _ in samples), 1)
    return corpus


def _flagged(sample: SampleScore, fields: Mapping[str, Any]) -> bool:
    return bool(flags(sample, fields.get("decoded_language")))


register_figure("wer", "WER %", unit="%", scale=100,
                per_sample=lambda s, _: s.wer)(_ratio(lambda s: s.word_errors,
                                                      lambda s: s.ref_words))
register_figure("cer", "CER %", unit="%", scale=100,
                per_sample=lambda s, _: s.cer)(_ratio(lambda s: s.char_errors,
                                                      lambda s: s.ref_chars))


@register_figure("hallucination_rate", "halluc. %", unit="%", scale=100,
                 per_sample=lambda s, f: float(_flagged(s, f)))
def hallucination_rate(samples: Sequence[Scored]) -> float | None:
    """Share of samples with a hallucination flag (core.hallucinations)."""
    return sum(_flagged(s, f) for s, f in samples) / len(samples)


@register_figure("wer_without_hallucinations", "WER % w/o halluc.", unit="%", scale=100)
def wer_without_hallucinations(samples: Sequence[Scored]) -> float | None:
    """WER over the samples with no hallucination flag: ordinary errors alone."""
    clean = [(s, f) for s, f in samples if not _flagged(s, f)]
    return _ratio(lambda s: s.word_errors, lambda s: s.ref_words)(clean) if clean else None


@register_figure("wer_degradation", "ΔWER vs clean", unit="points", scale=100)
def wer_degradation(samples: Sequence[Scored]) -> float | None:
    """Mean WER change from clean over the robustness conditions the samples were heard
    under, paired on the same clips (core.robustness); None in a run without conditions."""
    if not any(f.get("condition") not in (None, "clean") for _, f in samples):
        return None
    from core.robustness import mean_degradation  # the conditions' stack, only when used

    return mean_degradation(samples)
