"""Scoring: normalisation, corpus WER/CER, BLEU/chrF, alignment, bands, relative change."""

from __future__ import annotations

from core import metrics
from core.metrics import (
    QualityBand,
    align,
    normalize,
    quality_band,
    relative_change,
    rtfx,
    score,
    score_sample,
)

import math

import jiwer
import pytest
import sacrebleu


def test_wer_of_a_deleted_word_is_a_quarter() -> None:
    result = score(["le chat est noir"], ["le chat noir"], "fr")
    assert result.wer == 0.25
    assert (result.substitutions, result.deletions, result.insertions) == (0, 1, 0)
    assert result.cer == 4 / 16  # "est " deleted, spaces are characters


def test_corpus_wer_sums_errors_over_words_not_sentence_averages() -> None:
    refs = ["un deux trois quatre cinq six sept huit neuf dix", "bonjour"]
    hyps = ["un deux trois quatre cinq six sept huit neuf dix", "bonsoir"]
    result = score(refs, hyps, "fr")
    assert result.wer == pytest.approx(1 / 11)  # the mean of sentence WERs would be 0.5
    assert [s.wer for s in result.samples] == [0.0, 1.0]
    assert result.wer == pytest.approx(jiwer.wer(refs, hyps))
    assert result.cer == pytest.approx(jiwer.cer(refs, hyps))


def test_french_apostrophes_ligatures_and_case_are_normalised() -> None:
    assert normalize("L’homme", "fr") == normalize("l'homme", "fr") == "l homme"
    assert normalize("Le cœur, les Œufs !", "fr") == "le coeur les oeufs"
    assert normalize("« Peut-être », dit-il\u00a0?", "fr") == "peut être dit il"
    assert score(["C’est l’été."], ["c'est l'été"], "fr").wer == 0.0


def test_french_keeps_accents() -> None:
    assert normalize("À l'école, élève", "fr") == "à l école élève"
    assert score(["il a mangé"], ["il a mange"], "fr").wer == pytest.approx(1 / 3)


def test_english_uses_whisper_english_rules() -> None:
    assert normalize("I can’t go, Mr. Smith!", "en") == "i can not go mister smith"
    assert normalize("Um, twenty five dollars", "en-US") == "$25"
    _, source = metrics.english_spelling_mapping()
    assert isinstance(source, str) and source


def test_raw_and_normalised_texts_are_kept() -> None:
    sample = score(["Bonjour, Marie !"], ["bonjour marie"], "fr", ids=["utt1"]).samples[0]
    assert (sample.id, sample.reference, sample.hypothesis) == (
        "utt1", "Bonjour, Marie !", "bonjour marie")
    assert sample.reference_norm == sample.hypothesis_norm == "bonjour marie"
    assert sample.to_dict()["wer"] == 0.0


def test_empty_texts_do_not_crash() -> None:
    assert score_sample("", "").wer == 0.0
    deleted = score_sample("trois mots ici", "")
    assert (deleted.deletions, deleted.wer, deleted.cer) == (3, 1.0, 1.0)
    inserted = score_sample("", "deux mots")
    assert (inserted.insertions, inserted.wer) == (2, 2.0)  # counted against one word
    assert score_sample("...", "!").wer == 0.0  # punctuation only normalises to empty
    empty = score([], [])
    assert (empty.wer, empty.n_samples, empty.bleu) == (0.0, 0, 0.0)


def test_bleu_and_chrf_match_sacrebleu_on_normalised_text() -> None:
    refs, hyps = ["Le chat est noir.", "Il pleut."], ["le chat noir", "il pleut"]
    result = score(refs, hyps, "fr")
    norm_r = ["le chat est noir", "il pleut"]
    assert result.bleu == pytest.approx(sacrebleu.corpus_bleu(hyps, [norm_r]).score)
    assert result.chrf == pytest.approx(sacrebleu.corpus_chrf(hyps, [norm_r]).score)
    assert score(refs, refs, "fr").bleu == pytest.approx(100.0)


def test_per_sample_languages_pick_each_normaliser() -> None:
    result = score(["I can't", "l’eau"], ["I cannot", "l'eau"], ["en", "fr"])
    assert [s.reference_norm for s in result.samples] == ["i can not", "l eau"]
    with pytest.raises(ValueError, match="2 references but 1"):
        score(["a", "b"], ["a"])


def test_alignment_reports_substitutions_insertions_deletions() -> None:
    result = align("le chat est noir", "le chien est très noir", "fr")
    kinds = [(op.kind, op.ref, op.hyp) for op in result.ops]
    assert kinds == [("equal", ("le",), ("le",)), ("substitute", ("chat",), ("chien",)),
                     ("equal", ("est",), ("est",)), ("insert", (), ("très",)),
                     ("equal", ("noir",), ("noir",))]
    assert (result.substitutions, result.insertions, result.deletions) == (1, 1, 0)
    assert result.error_rate == 0.5
    assert [op.kind for op in align("a b", "").ops] == ["delete"]


def test_rtfx_is_audio_seconds_over_processing_seconds() -> None:
    assert rtfx(120.0, 4.0) == 30.0
    assert rtfx(10.0, 0.0) is None
    result = score(["a", "b"], ["a", "b"], durations=[3.0, 5.0], processing_times=[1.0, 1.0])
    assert (result.audio_seconds, result.processing_seconds, result.rtfx) == (8.0, 2.0, 4.0)
    assert score(["a"], ["a"], durations=[6.0], processing_seconds=2.0).rtfx == 3.0
    assert score(["a"], ["a"]).rtfx is None


@pytest.mark.parametrize(("wer", "band"), [
    (0.0, QualityBand.EXCELLENT), (0.099, QualityBand.EXCELLENT), (0.10, QualityBand.GOOD),
    (0.199, QualityBand.GOOD), (0.20, QualityBand.ACCEPTABLE), (0.30, QualityBand.ACCEPTABLE),
    (0.301, QualityBand.TO_IMPROVE), (1.5, QualityBand.TO_IMPROVE),
])
def test_quality_bands_follow_the_french_notes(wer: float, band: QualityBand) -> None:
    assert quality_band(wer) is band


def test_relative_change_negative_means_fewer_errors() -> None:
    assert relative_change(0.15, 0.20) == pytest.approx(-25.0)
    assert relative_change(0.30, 0.20) == pytest.approx(50.0)
    assert relative_change(0.0, 0.0) == 0.0
    assert relative_change(0.1, 0.0) is None


def test_corpus_scores_serialise_with_band() -> None:
    data = score(["le chat est noir"], ["le chat noir"], "fr").to_dict()
    assert data["band"] == "acceptable" and data["wer"] == 0.25
    assert data["samples"][0]["deletions"] == 1
    assert not math.isnan(data["chrf"])


def test_alignment_matches_jiwer_operation_for_operation() -> None:
    """ERT aligns with RapidFuzz directly; jiwer (the reference implementation) must agree on
    every operation and count, words and characters, over many random pairs."""
    from core.metrics import align_chars

    import random

    rng = random.Random(7)
    vocab = ["le", "la", "chat", "chien", "noir", "est", "un", "à", "été", "x"]
    for _ in range(300):
        ref = " ".join(rng.choices(vocab, k=rng.randint(1, 12)))
        hyp = " ".join(rng.choices(vocab, k=rng.randint(1, 12)))
        for ours, theirs in ((align(ref, hyp, normalized=False), jiwer.process_words(ref, hyp)),
                             (align_chars(ref, hyp, normalized=False),
                              jiwer.process_characters(ref, hyp))):
            assert (ours.hits, ours.substitutions, ours.deletions, ours.insertions) == (
                theirs.hits, theirs.substitutions, theirs.deletions, theirs.insertions)
            ref_tokens, hyp_tokens = theirs.references[0], theirs.hypotheses[0]
            assert [(op.kind, list(op.ref), list(op.hyp)) for op in ours.ops] == [
                (c.type, ref_tokens[c.ref_start_idx:c.ref_end_idx],
                 hyp_tokens[c.hyp_start_idx:c.hyp_end_idx]) for c in theirs.alignments[0]]


def test_a_large_corpus_scored_over_processes_equals_one_process(monkeypatch) -> None:
    """Large runs are scored over forked processes (core.parallel): every sample score and
    every corpus figure must be exactly what one process gives, and what sacrebleu's own
    corpus functions give."""
    from core import parallel

    import random

    rng = random.Random(3)
    vocab = ["le", "chat", "noir", "dort", "sur", "un", "tapis", "rouge", "vingt", "et"]
    refs = [" ".join(rng.choices(vocab, k=rng.randint(1, 9))) for _ in range(400)]
    hyps = [" ".join(rng.choices(vocab, k=rng.randint(0, 9))) for _ in range(400)]
    monkeypatch.setattr(metrics, "PARALLEL_MIN_SAMPLES", 10_000)
    one = score(refs, hyps, "fr")
    forked: list[int] = []
    original = parallel.fork_map

    def counting(fn, items, min_per_process):
        out = original(fn, items, min_per_process)
        forked.append(len(out))
        return out

    monkeypatch.setattr(metrics, "PARALLEL_MIN_SAMPLES", 100)
    monkeypatch.setattr(metrics, "fork_map", counting)
    monkeypatch.setattr(parallel, "usable_cores", lambda: 4)
    monkeypatch.setattr(parallel, "single_threaded", lambda: True)  # others leave threads here
    many = score(refs, hyps, "fr")
    assert forked == [4]  # 400 samples, 100 a process, 4 cores
    assert many == one
    norm_r = [s.reference_norm for s in one.samples]
    norm_h = [s.hypothesis_norm for s in one.samples]
    assert many.bleu == sacrebleu.corpus_bleu(norm_h, [norm_r]).score
    assert many.chrf == sacrebleu.corpus_chrf(norm_h, [norm_r]).score


def test_pairs_primed_while_a_run_goes_are_summed_at_its_end_not_scored_again(monkeypatch
                                                                             ) -> None:
    monkeypatch.setattr(metrics, "_PRIMED", {})
    refs = ["le chat noir dort", "vingt et un", "sur un tapis rouge"]
    hyps = ["le chat dort", "vingt-et-un", "sur un tapis"]
    fresh = score(refs, hyps, "fr", ids=["a", "b", "c"])
    assert metrics._PRIMED == {}  # scoring alone remembers nothing
    metrics.prime(refs[:2], hyps[:2], "fr", ids=["a", "b"])  # as they were recorded
    metrics.prime(refs, hyps, "fr", ids=["a", "b", "c"])
    calls: list[int] = []
    real = metrics._score_part
    monkeypatch.setattr(metrics, "_score_part", lambda rows: calls.append(len(rows)) or
                        real(rows))
    metrics.prime(refs, hyps, "fr", ids=["a", "b", "c"])
    assert calls == []  # primed once each
    again = score(refs, ["le chat noir dort", *hyps[1:]], "fr", ids=["a", "b", "c"])
    assert calls == [1]  # a changed hypothesis is a new pair; the two others were primed
    assert list(metrics._PRIMED) == [("le chat noir dort", "le chat dort", "fr", "a", None,
                                      None, False)]  # taken by score(): the stale "a" is left
    assert again.samples[1:] == fresh.samples[1:]


def test_the_pairs_primed_are_bounded_and_scores_stay_exact(monkeypatch) -> None:
    monkeypatch.setattr(metrics, "_PRIMED", {})
    monkeypatch.setattr(metrics, "PRIMED_LIMIT", 10)
    refs = [f"mot{i} et encore" for i in range(30)]
    hyps = [f"mot{i} et" for i in range(30)]
    metrics.prime(refs, hyps, "fr")
    assert len(metrics._PRIMED) == 10
    primed = score(refs, hyps, "fr")
    assert metrics._PRIMED == {}
    assert primed.to_dict() == score(refs, hyps, "fr").to_dict()
