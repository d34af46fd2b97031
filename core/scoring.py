"""Per-model verdicts from prediction rows: corpus scores, intervals, per-language, deltas.

Every place that turns transcripts into figures a user decides on — a run's
consolidated results, ``ert score``, the Compare page — goes through
:func:`score_predictions`, so they cannot disagree. Predictions come in one
shape (:class:`Prediction`); :func:`read_predictions` reads it from an ERT
run folder, a NeMo / Open ASR Leaderboard JSONL (``text``, ``pred_text``)
or ERT's own rows (``reference``, ``hypothesis``). This layer does not know how a run
folder is laid out: its caller passes the readers (``folder_rows``, ``folder_baseline``;
:func:`core.evaluation.run_dir.scored_rows` and :func:`~core.evaluation.run_dir.run_baseline`).
"""

from __future__ import annotations

from core.confidence import Interval, paired_change, wer_interval
from core.figures import FIGURES, figures_of
from core.languages import guess_language, language_key
from core.metrics import CorpusScores, prime, score
from core.phrasing import percent, percent_span

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

UNKNOWN_LANGUAGE = "?"
BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no significant difference"


class PredictionsError(ValueError):
    """Predictions that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Prediction:
    """One scored utterance: a model's hypothesis against the reference."""

    model: str
    id: str
    reference: str
    hypothesis: str
    language: str | None = None
    # The row's other fields (duration, decoded_language, speaker, accent, …): what
    # core.analysis slices and flags by; not part of the score.
    fields: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False,
                                      repr=False)


@dataclass(frozen=True)
class LanguageScore:
    language: str
    samples: int
    wer: float
    cer: float
    wer_ci: list[float] | None


@dataclass(frozen=True)
class Comparison:
    """A candidate against the baseline on the utterances both transcribed."""

    baseline: str
    pairs: int
    baseline_wer: float
    candidate_wer: float
    delta_wer: float
    delta_wer_ci: list[float]
    significant: bool

    @property
    def verdict(self) -> str:
        if not self.significant:
            return NO_DIFFERENCE
        return BETTER if self.delta_wer < 0 else WORSE

    def sentence(self) -> str:
        """"better: WER −3.1 points (95 % interval −5.0 to −1.2) on 120 clips"."""
        low, high = (100 * v for v in self.delta_wer_ci)
        return (f"{self.verdict}: WER {100 * self.delta_wer:+.1f} points (95 % interval "
                f"{low:+.1f} to {high:+.1f}) on {self.pairs} paired "
                f"{'clip' if self.pairs == 1 else 'clips'}")


@dataclass(frozen=True)
class ModelScore:
    model: str
    samples: int
    wer: float
    cer: float
    bleu: float
    chrf: float
    wer_ci: list[float] | None
    languages: dict[str, LanguageScore]
    comparison: Comparison | None = None
    corpus: CorpusScores | None = field(default=None, repr=False, compare=False)
    # Every figure of core.figures' registry, by name (wer and cer among them).
    figures: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``ert score --json`` row: model, samples, wer, cer, wer_ci (+ delta fields)
        and every registered figure."""
        row: dict[str, Any] = {
            "model": self.model, "samples": self.samples, "wer": self.wer, "cer": self.cer,
            "wer_ci": self.wer_ci, "bleu": self.bleu, "chrf": self.chrf,
            "languages": {k: vars(v) for k, v in self.languages.items()},
            "figures": self.figures}
        if self.comparison is not None:
            c = self.comparison
            row.update(baseline=c.baseline, pairs=c.pairs, delta_wer=c.delta_wer,
                       delta_wer_ci=c.delta_wer_ci, significant=c.significant,
                       verdict=c.verdict)
        return row


def _ci(interval: Interval | None) -> list[float] | None:
    return interval.as_list() if interval is not None else None


def _language_scores(corpus: CorpusScores) -> dict[str, LanguageScore]:
    groups: dict[str, list[int]] = {}
    for i, sample in enumerate(corpus.samples):
        groups.setdefault(language_key(sample.language) or UNKNOWN_LANGUAGE, []).append(i)
    if list(groups) == [UNKNOWN_LANGUAGE]:
        return {}
    out = {}
    for lang, idx in sorted(groups.items()):
        chosen = [corpus.samples[i] for i in idx]
        words = sum(s.ref_words for s in chosen)
        chars = sum(s.ref_chars for s in chosen)
        out[lang] = LanguageScore(
            lang, len(chosen), sum(s.word_errors for s in chosen) / max(words, 1),
            sum(s.char_errors for s in chosen) / max(chars, 1),
            _ci(wer_interval([s.word_errors for s in chosen], [s.ref_words for s in chosen])))
    return out


def compare(baseline: CorpusScores, candidate: CorpusScores, baseline_name: str
            ) -> Comparison | None:
    """Paired bootstrap of the WER change on the utterances (ids) both sides scored."""
    cand = {s.id: s for s in candidate.samples}
    pairs = [(b, cand[b.id]) for b in baseline.samples if b.id in cand]
    if not pairs:
        return None
    delta = paired_change(pairs)
    assert delta is not None
    base_wer = sum(b.word_errors for b, _ in pairs) / max(sum(b.ref_words for b, _ in pairs), 1)
    return Comparison(baseline_name, len(pairs), base_wer, base_wer + delta.value, delta.value,
                      delta.as_list(), delta.excludes_zero)


def prime_predictions(predictions: Iterable[Prediction], strip_accents: bool = False) -> None:
    """Score now what :func:`score_predictions` will be given later (a run's samples as they
    are recorded), so that it then only sums them (:func:`core.metrics.prime`)."""
    rows = list(predictions)
    prime([p.reference for p in rows], [p.hypothesis for p in rows],
          [p.language for p in rows], ids=[p.id for p in rows], strip_accents=strip_accents)


def _row_order(p: Prediction) -> tuple[str, str, str, str]:
    """Sample id first; the texts only break ties between rows that share an id."""
    return p.id, p.reference, p.hypothesis, p.language or ""


def score_predictions(predictions: Iterable[Prediction], baseline: str | None = None,
                      strip_accents: bool = False) -> dict[str, ModelScore]:
    """Scores per model (in order of first appearance); with ``baseline``, every other
    model also gets its paired change against it. ``strip_accents`` scores ``é`` as ``e``.

    Each model's rows are scored in sample-id order: the bootstrap draws utterances by
    position, so the same transcripts in another order (another file, a resumed run) would
    otherwise give other intervals."""
    by_model: dict[str, list[Prediction]] = {}
    for p in predictions:
        by_model.setdefault(p.model, []).append(p)
    by_model = {model: sorted(rows, key=_row_order) for model, rows in by_model.items()}
    if baseline is not None and baseline not in by_model:
        raise PredictionsError(f"baseline {baseline!r} is not among the models: "
                               f"{', '.join(by_model) or 'none'}")
    corpora = {model: score([p.reference for p in rows], [p.hypothesis for p in rows],
                            [p.language for p in rows], ids=[p.id for p in rows],
                            strip_accents=strip_accents)
               for model, rows in by_model.items()}
    out = {}
    for model, corpus in corpora.items():
        comparison = (compare(corpora[baseline], corpus, baseline)
                      if baseline is not None and model != baseline else None)
        out[model] = ModelScore(
            model, corpus.n_samples, corpus.wer, corpus.cer, corpus.bleu, corpus.chrf,
            _ci(wer_interval([s.word_errors for s in corpus.samples],
                             [s.ref_words for s in corpus.samples])),
            _language_scores(corpus), comparison, corpus,
            figures_of([(sample, p.fields) for sample, p in
                        zip(corpus.samples, by_model[model], strict=True)]))
    return out


# --- reading predictions ------------------------------------------------------------------


# Where the language of a source's rows that name none came from (``ert score --json``).
FROM_ROWS, FROM_OPTION, FROM_REFERENCES, UNKNOWN_ORIGIN = (
    "rows", "--language", "references", "unknown")


@dataclass(frozen=True)
class LanguageChoice:
    """The language one source's rows were scored in when some named none, and why: French
    scored without French rules counts equivalent texts (``22`` / ``vingt-deux``) as errors."""

    source: str
    language: str | None  # None: no language's rules (the basic normaliser)
    origin: str  # FROM_ROWS (each row names its own), FROM_OPTION, FROM_REFERENCES, UNKNOWN_ORIGIN
    unnamed: int  # rows that named no language

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "language": self.language, "from": self.origin,
                "rows_without_language": self.unnamed}


def _fill_language(rows: list[Prediction], language: str | None, source: str
                   ) -> tuple[list[Prediction], LanguageChoice]:
    """Rows that name no language take ``language``, else the one their references are
    clearly in (:func:`core.languages.guess_language`, over the whole source), else none."""
    unnamed = [p for p in rows if not p.language]
    if not unnamed:
        return rows, LanguageChoice(source, None, FROM_ROWS, 0)
    origin = FROM_OPTION
    if not language:
        language = guess_language(p.reference for p in unnamed)
        origin = FROM_REFERENCES if language else UNKNOWN_ORIGIN
    if language:
        rows = [p if p.language else replace(p, language=language) for p in rows]
    return rows, LanguageChoice(source, language, origin, len(unnamed))


def _from_row(row: dict[str, Any], where: str, default_model: str, index: int) -> Prediction:
    if "pred_text" in row:  # NeMo / Open ASR Leaderboard
        reference, hypothesis = row.get("text"), row.get("pred_text")
    elif "hypothesis" in row:  # ERT's own rows
        reference, hypothesis = row.get("reference"), row.get("hypothesis")
    else:
        raise PredictionsError(f"{where}: a row needs 'text' + 'pred_text' (NeMo) or "
                               f"'reference' + 'hypothesis' (ERT); found {sorted(row)}")
    if not isinstance(reference, str) or not isinstance(hypothesis, str | None):
        raise PredictionsError(f"{where}: the reference must be text")
    sample_id = row.get("id") or row.get("audio_filepath") or f"{index}"
    return Prediction(str(row.get("model") or default_model), str(sample_id), reference,
                      hypothesis or "", row.get("language") or None, fields=row)


def _usable(row: dict[str, Any]) -> bool:
    """Failed and skipped samples of a run carry no transcript to score."""
    return not row.get("error") and not row.get("skipped")


# A run folder's sample records, None where the folder holds none (the caller's reader:
# :func:`core.evaluation.run_dir.scored_rows`).
FolderRows = Callable[[Path], "list[dict[str, Any]] | None"]


def read_predictions(path: str | Path, language: str | None = None,
                     folder_rows: FolderRows | None = None) -> list[Prediction]:
    """Predictions from a run folder, a JSONL file (NeMo or ERT rows) or a JSON list.

    ``language`` fills in rows that name none; without it, the language their references
    are clearly in (see :func:`read_source`). Rows without ``model`` take the file's stem
    as the model name. A folder is read by ``folder_rows`` (without it, no folder is a run).
    """
    return read_source(path, language, folder_rows)[0]


def read_source(path: str | Path, language: str | None = None,
                folder_rows: FolderRows | None = None
                ) -> tuple[list[Prediction], LanguageChoice]:
    """:func:`read_predictions`, and how its rows that named no language got one."""
    rows = _read_rows(Path(path), folder_rows)
    return _fill_language(rows, language, str(path))


def _read_rows(path: Path, folder_rows: FolderRows | None = None) -> list[Prediction]:
    if path.is_dir():
        records = folder_rows(path) if folder_rows is not None else None
        if records is None:
            raise PredictionsError(f"{path} is not an ERT run folder (no sample records)")
        rows = [r for r in records if _usable(r)]
        return [_from_row(r, f"{path} record {i + 1}", path.name, i)
                for i, r in enumerate(rows)]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictionsError(f"cannot read {path}: {exc}") from exc
    rows: list[tuple[str, Any]] = []
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PredictionsError(f"{path}: not JSON ({exc})") from exc
        data = data.get("samples", []) if isinstance(data, dict) else data
        rows = [(f"{path} row {i + 1}", r) for i, r in enumerate(data)]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path}:{number}", json.loads(line)))
            except ValueError as exc:
                raise PredictionsError(f"{path}:{number}: not a JSON line ({exc})") from exc
    out = []
    for index, (where, row) in enumerate(rows):
        if not isinstance(row, dict):
            raise PredictionsError(f"{where}: expected a JSON object")
        if _usable(row):
            out.append(_from_row(row, where, path.stem, index))
    if not out:
        raise PredictionsError(f"{path} holds no prediction to score")
    return out


def default_baseline(paths: Sequence[str | Path],
                     folder_baseline: Callable[[Path], str | None] | None = None) -> str | None:
    """One run folder is compared against the baseline it was run with (``folder_baseline``
    reads it: :func:`core.evaluation.run_dir.run_baseline`); anything else has none unless
    asked."""
    if len(paths) != 1 or not Path(paths[0]).is_dir() or folder_baseline is None:
        return None
    return folder_baseline(Path(paths[0]))


def read_many(paths: Sequence[str | Path], language: str | None = None,
              folder_rows: FolderRows | None = None
              ) -> tuple[list[Prediction], list[LanguageChoice]]:
    """Predictions of several files, and how each file's language was chosen (per file);
    a model named in two files is an error, not a merge."""
    out: list[Prediction] = []
    choices: list[LanguageChoice] = []
    seen: dict[str, str] = {}
    for path in paths:
        rows, choice = read_source(path, language, folder_rows)
        choices.append(choice)
        for model in dict.fromkeys(p.model for p in rows):
            if model in seen:
                raise PredictionsError(f"model {model!r} is in both {seen[model]} and {path}")
            seen[model] = str(path)
        out += rows
    return out, choices


# --- reporting ----------------------------------------------------------------------------


def _range(ci: list[float] | None, signed: bool = False) -> str:
    return percent_span(ci, signed, brackets=True)


def render_table(scores: dict[str, ModelScore]) -> str:
    """The ``ert score`` table: WER/CER in %, 95 % intervals, per-language lines, then every
    other registered figure (core.figures) in a second table."""
    head = (f"{'model':32} {'samples':>7} {'WER %':>6} {'95% interval':>14} {'CER %':>6}  "
            "vs baseline")
    lines = [head, "-" * len(head)]
    others = [f for name, f in FIGURES.items() if name not in ("wer", "cer")]
    for s in scores.values():
        versus = "(baseline)" if s.comparison is None else (
            f"ΔWER {100 * s.comparison.delta_wer:+.1f} {_range(s.comparison.delta_wer_ci, True)}"
            f" {s.comparison.verdict}")
        if all(m.comparison is None for m in scores.values()):
            versus = ""
        lines.append(f"{s.model:32} {s.samples:7d} {percent(s.wer):>6} {_range(s.wer_ci):>14} "
                     f"{percent(s.cer):>6}  {versus}".rstrip())
        if len(s.languages) > 1:
            for lang in s.languages.values():
                lines.append(f"  {lang.language:30} {lang.samples:7d} {percent(lang.wer):>6} "
                             f"{_range(lang.wer_ci):>14} {percent(lang.cer):>6}")
    if others:
        lines += ["", f"{'model':32} " + " ".join(f"{f.label:>{max(len(f.label), 6)}}"
                                                 for f in others)]
        for s in scores.values():
            lines.append(f"{s.model:32} " + " ".join(
                f"{f.show(s.figures.get(f.name)):>{max(len(f.label), 6)}}" for f in others))
    return "\n".join(lines)
