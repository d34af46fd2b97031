"""The one scoring function of ERT: normalised WER/CER, BLEU, chrF and RTFx.

Scores follow the Open ASR Leaderboard: both texts go through one normaliser
(:mod:`core.normalize`: Whisper's, plus numbers spelled out for fr/es/de/it/pt),
then WER and CER are corpus-level, i.e. all errors summed over all reference
words, never an average of per-sentence WERs (which over-weights short sentences).

Conventions: WER and CER are fractions (0.25 = 25 %), BLEU and chrF are
sacrebleu's 0–100 scores.
"""

from __future__ import annotations

# Re-exported: callers use metrics.normalize, metrics.language_key.
from core.languages import language_key  # noqa: F401
from core.normalize import english_spelling_mapping, normalize  # noqa: F401
from core.parallel import fork_map

import itertools
import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from rapidfuzz.distance import Levenshtein
from sacrebleu.metrics import BLEU, CHRF

# --- alignment -------------------------------------------------------------------------

OpKind = Literal["equal", "substitute", "delete", "insert"]


@dataclass(frozen=True)
class AlignmentOp:
    """One run of the alignment: reference words replaced by hypothesis words."""

    kind: OpKind
    ref: tuple[str, ...]
    hyp: tuple[str, ...]


@dataclass(frozen=True)
class Alignment:
    """The edit operations between a reference and a hypothesis (words or characters)."""

    ops: tuple[AlignmentOp, ...]
    hits: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def ref_len(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def hyp_len(self) -> int:
        return self.hits + self.substitutions + self.insertions

    @property
    def error_rate(self) -> float:
        """Errors over reference length. With an empty reference the errors
        (insertions) are counted against one word, so the rate stays finite."""
        return self.errors / max(self.ref_len, 1)


_KINDS: dict[str, OpKind] = {"equal": "equal", "replace": "substitute", "delete": "delete",
                             "insert": "insert"}


def _align(ref: list[str], hyp: list[str]) -> Alignment:
    """Levenshtein alignment of two token lists: RapidFuzz's opcodes, the computation jiwer's
    ``process_words`` / ``process_characters`` make (same operations and counts, tested
    against jiwer), without its per-pair text transforms, a third of scoring's time."""
    if not ref or not hyp:  # jiwer's behaviour on empty input is not part of its contract
        ops = []
        if ref:
            ops.append(AlignmentOp("delete", tuple(ref), ()))
        if hyp:
            ops.append(AlignmentOp("insert", (), tuple(hyp)))
        return Alignment(tuple(ops), 0, 0, len(ref), len(hyp))
    counts = {"equal": 0, "substitute": 0, "delete": 0, "insert": 0}
    ops = []
    for tag, i1, i2, j1, j2 in Levenshtein.opcodes(ref, hyp):
        kind = _KINDS[tag]
        counts[kind] += max(i2 - i1, j2 - j1)
        ops.append(AlignmentOp(kind, tuple(ref[i1:i2]), tuple(hyp[j1:j2])))
    return Alignment(tuple(ops), counts["equal"], counts["substitute"], counts["delete"],
                     counts["insert"])


def align(reference: str, hypothesis: str, language: str | None = None, *,
          normalized: bool = True) -> Alignment:
    """Word alignment (substitutions, deletions, insertions) for highlighting a sample.

    Both texts are normalised first unless ``normalized=False``.
    """
    if normalized:
        reference, hypothesis = normalize(reference, language), normalize(hypothesis, language)
    return _align(reference.split(), hypothesis.split())


def align_chars(reference: str, hypothesis: str, language: str | None = None, *,
                normalized: bool = True) -> Alignment:
    """Character alignment (spaces count as characters, as in jiwer's CER)."""
    if normalized:
        reference, hypothesis = normalize(reference, language), normalize(hypothesis, language)
    return _align(list(reference.strip()), list(hypothesis.strip()))


# --- bands and comparisons -------------------------------------------------------------


class QualityBand(StrEnum):
    """WER bands of the French fine-tuning notes."""

    EXCELLENT = "excellent"
    GOOD = "good"
    ACCEPTABLE = "acceptable"
    TO_IMPROVE = "to improve"


def quality_band(wer: float) -> QualityBand:
    """Band of a WER given as a fraction: < 0.10 excellent, < 0.20 good,
    ≤ 0.30 acceptable, > 0.30 to improve (the notes' bounds: 10, 20, 30 %)."""
    if wer < 0.10:
        return QualityBand.EXCELLENT
    if wer < 0.20:
        return QualityBand.GOOD
    if wer <= 0.30:
        return QualityBand.ACCEPTABLE
    return QualityBand.TO_IMPROVE


def relative_change(candidate: float, baseline: float) -> float | None:
    """``(candidate - baseline) / baseline`` in %.

    For WER and CER a negative change is an improvement (fewer errors); for
    BLEU, chrF and RTFx a positive one is. None when the baseline is 0 and
    the candidate is not (undefined); 0.0 when both are 0.
    """
    if baseline == 0:
        return 0.0 if candidate == 0 else None
    return (candidate - baseline) / abs(baseline) * 100.0


def rtfx(audio_seconds: float, processing_seconds: float) -> float | None:
    """Inverse real-time factor: seconds of audio transcribed per second of compute."""
    if processing_seconds <= 0 or not math.isfinite(processing_seconds):
        return None
    return audio_seconds / processing_seconds


# --- scoring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleScore:
    """One utterance: raw and normalised texts, word and character error counts."""

    id: str
    reference: str
    hypothesis: str
    reference_norm: str
    hypothesis_norm: str
    language: str | None
    ref_words: int
    substitutions: int
    deletions: int
    insertions: int
    ref_chars: int
    char_errors: int
    duration: float | None = None
    processing_time: float | None = None

    @property
    def word_errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Per-sample WER (an empty reference counts its insertions against one word)."""
        return self.word_errors / max(self.ref_words, 1)

    @property
    def cer(self) -> float:
        return self.char_errors / max(self.ref_chars, 1)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "wer": self.wer, "cer": self.cer}


@dataclass(frozen=True)
class CorpusScores:
    """Corpus-level scores; ``wer``/``cer`` are fractions, ``bleu``/``chrf`` 0–100."""

    wer: float
    cer: float
    bleu: float
    chrf: float
    n_samples: int
    ref_words: int
    substitutions: int
    deletions: int
    insertions: int
    ref_chars: int
    char_errors: int
    audio_seconds: float | None
    processing_seconds: float | None
    rtfx: float | None
    samples: tuple[SampleScore, ...] = field(repr=False)

    @property
    def band(self) -> QualityBand:
        return quality_band(self.wer)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "samples"}
        return {**data, "band": self.band.value,
                "samples": [sample.to_dict() for sample in self.samples]}


def _per_sample(values: Sequence[Any] | Any, n: int, name: str) -> list[Any]:
    if values is None or isinstance(values, str):
        return [values] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{name}: {len(values)} values for {n} samples")
    return values


def score_sample(reference: str, hypothesis: str, language: str | None = None, *,
                 sample_id: str = "", duration: float | None = None,
                 processing_time: float | None = None,
                 strip_accents: bool = False) -> SampleScore:
    """Normalise and score one pair."""
    ref_norm = normalize(reference, language, strip_accents)
    hyp_norm = normalize(hypothesis, language, strip_accents)
    words = align(ref_norm, hyp_norm, normalized=False)
    chars = align_chars(ref_norm, hyp_norm, normalized=False)
    return SampleScore(sample_id, reference or "", hypothesis or "", ref_norm, hyp_norm, language,
                       words.ref_len, words.substitutions, words.deletions, words.insertions,
                       chars.ref_len, chars.errors, duration, processing_time)


PARALLEL_MIN_SAMPLES = 2000  # per process: below, forking costs more than it saves


@dataclass(frozen=True)
class _Part:
    """A run of samples scored, with sacrebleu's per-sentence statistics for BLEU and chrF
    (summed over the corpus, they give the corpus scores ``corpus_bleu``/``corpus_chrf``
    give: the same defaults, the same sums; sacrebleu is pinned, and the tests compare)."""

    samples: list[SampleScore]
    bleu: list[list[Any]]
    chrf: list[list[Any]]


def _unpack(parts: Sequence[_Part]) -> list[tuple[SampleScore, list[Any], list[Any]]]:
    return [(s, b, c) for p in parts for s, b, c in zip(p.samples, p.bleu, p.chrf, strict=True)]


def _score_part(rows: Sequence[tuple[Any, ...]]) -> _Part:
    samples = [score_sample(ref, hyp, lang, sample_id=sample_id, duration=dur,
                            processing_time=spent, strip_accents=strip)
               for ref, hyp, lang, sample_id, dur, spent, strip in rows]
    if not samples:
        return _Part([], [], [])
    hyps = [s.hypothesis_norm for s in samples]
    refs = [[s.reference_norm for s in samples]]
    return _Part(samples, BLEU()._extract_corpus_statistics(hyps, refs),
                 CHRF()._extract_corpus_statistics(hyps, refs))


_Row = tuple[str, str, str | None, str, float | None, float | None, bool]
_Scored = tuple[SampleScore, list[Any], list[Any]]
# Pairs scored ahead (prime), by their inputs, until score() takes them: a run's samples are
# scored while its GPU workers decode, so scoring the run at its end only sums. Bounded (about
# 3 KB a pair; the oldest go first, to be scored at the end); a lock, as the app and the API
# score from several threads.
_PRIMED: dict[_Row, _Scored] = {}
PRIMED_LIMIT = 100_000
_PRIMED_LOCK = threading.Lock()


def _rows(references: Sequence[str], hypotheses: Sequence[str],
          language: str | Sequence[str | None] | None, ids: Sequence[str] | None,
          durations: Sequence[float | None] | None,
          processing_times: Sequence[float | None] | None, strip_accents: bool
          ) -> list[_Row]:
    n = len(references)
    if len(hypotheses) != n:
        raise ValueError(f"{n} references but {len(hypotheses)} hypotheses")
    languages = _per_sample(language, n, "language")
    ids = [str(i) for i in (_per_sample(ids, n, "ids") if ids is not None else range(n))]
    durations = _per_sample(durations, n, "durations")
    times = _per_sample(processing_times, n, "processing_times")
    return list(zip(references, hypotheses, languages, ids, durations, times,
                    [strip_accents] * n, strict=True))


def prime(references: Sequence[str], hypotheses: Sequence[str],
          language: str | Sequence[str | None] | None = None, *,
          ids: Sequence[str] | None = None, strip_accents: bool = False) -> None:
    """Score now, in this process, what :func:`score` will be asked with the same arguments
    (a run's samples as they are recorded), so that it only sums them then."""
    rows = _rows(references, hypotheses, language, ids, None, None, strip_accents)
    with _PRIMED_LOCK:
        missing = [row for row in dict.fromkeys(rows) if row not in _PRIMED]
    if not missing:
        return
    fresh = dict(zip(missing, _unpack([_score_part(missing)]), strict=True))
    with _PRIMED_LOCK:
        _PRIMED.update(fresh)
        for old in list(itertools.islice(_PRIMED, max(0, len(_PRIMED) - PRIMED_LIMIT))):
            del _PRIMED[old]


def score(
    references: Sequence[str],
    hypotheses: Sequence[str],
    language: str | Sequence[str | None] | None = None,
    *,
    ids: Sequence[str] | None = None,
    durations: Sequence[float | None] | None = None,
    processing_times: Sequence[float | None] | None = None,
    processing_seconds: float | None = None,
    strip_accents: bool = False,
) -> CorpusScores:
    """Score hypotheses against references (one language, or one per sample).

    Empty texts never crash: an empty hypothesis is all deletions, an empty
    reference all insertions, both empty zero errors. RTFx is total audio
    seconds (``durations``) over ``processing_seconds`` (default: the sum of
    ``processing_times``); None when either is unknown. Pairs scored ahead by
    :func:`prime` are taken from there, not scored again.
    """
    rows = _rows(references, hypotheses, language, ids, durations, processing_times,
                 strip_accents)
    n = len(rows)
    durations = [row[4] for row in rows]
    times = [row[5] for row in rows]
    with _PRIMED_LOCK:  # what was scored ahead is taken, the rest scored now
        table = {row: _PRIMED.pop(row) for row in dict.fromkeys(rows) if row in _PRIMED}
    missing = [row for row in dict.fromkeys(rows) if row not in table]
    if missing:
        table.update(zip(missing, _unpack(fork_map(_score_part, missing, PARALLEL_MIN_SAMPLES)),
                         strict=True))
    scored = [table[row] for row in rows]
    samples = tuple(s for s, _, _ in scored)
    ref_words = sum(s.ref_words for s in samples)
    word_errors = sum(s.word_errors for s in samples)
    ref_chars = sum(s.ref_chars for s in samples)
    char_errors = sum(s.char_errors for s in samples)
    bleu = BLEU()._aggregate_and_compute([b for _, b, _ in scored]).score if n else 0.0
    chrf = CHRF()._aggregate_and_compute([c for _, _, c in scored]).score if n else 0.0
    audio_seconds = (float(sum(durations)) if n and all(d is not None for d in durations)
                     else None)
    if processing_seconds is None and n and all(t is not None for t in times):
        processing_seconds = float(sum(times))
    speed = (rtfx(audio_seconds, processing_seconds)
             if audio_seconds is not None and processing_seconds is not None else None)
    return CorpusScores(
        wer=word_errors / max(ref_words, 1),
        cer=char_errors / max(ref_chars, 1),
        bleu=float(bleu),
        chrf=float(chrf),
        n_samples=n,
        ref_words=ref_words,
        substitutions=sum(s.substitutions for s in samples),
        deletions=sum(s.deletions for s in samples),
        insertions=sum(s.insertions for s in samples),
        ref_chars=ref_chars,
        char_errors=char_errors,
        audio_seconds=audio_seconds,
        processing_seconds=processing_seconds,
        rtfx=speed,
        samples=samples,
    )
