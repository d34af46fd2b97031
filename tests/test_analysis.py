"""Issue 28: where and why models fail — slices, error anatomy, hallucinations (no models:
hand-made predictions scored by the one scoring function)."""

from __future__ import annotations

from core import error_anatomy, hallucinations, slices
from core.analysis import analysis_of, languages_table
from core.datasets import load_manifest
from core.scoring import Prediction, score_predictions

import json
import subprocess
import sys

from tests.conftest import REPO


def _scored(rows: list[tuple[str, str, str, str]], language: str = "en"):
    predictions = [Prediction(model, i, ref, hyp, language) for model, i, ref, hyp in rows]
    return score_predictions(predictions)


def test_error_anatomy_counts_substitutions_deletions_and_insertions_by_hand():
    scores = _scored([
        ("m", "1", "the cat sat on the mat", "the bat sat on mat"),      # cat→bat, del the
        ("m", "2", "a cat is here", "a bat is here now"),                # cat→bat, ins now
        ("m", "3", "go home", "go home now now"),                        # ins now ×2
    ])
    result = error_anatomy.anatomy(scores["m"].corpus.samples)
    assert result.errors == 6
    (top,) = [c for c in result.substitutions if (c.ref, c.hyp) == ("cat", "bat")]
    assert top.count == 2 and top.share == round(2 / 6, 4)
    assert [(c.ref, c.count) for c in result.deletions] == [("the", 1)]
    assert [(c.hyp, c.count) for c in result.insertions] == [("now", 3)]
    assert result.substitutions[0].ref == "cat"  # the most frequent first
    marked = error_anatomy.marked(scores["m"].corpus.samples[0])
    assert ("substitute", "cat", "bat") in marked and ("delete", "the", None) in marked


def test_changed_words_between_baseline_and_candidate():
    scores = _scored([
        ("base", "1", "bonjour paris", "bonsoir paris"),
        ("base", "2", "merci paris", "merci paris"),
        ("tuned", "1", "bonjour paris", "bonjour paris"),
        ("tuned", "2", "merci paris", "merci pari"),
    ], "fr")
    changes = error_anatomy.changed_words(scores["base"].corpus.samples,
                                          scores["tuned"].corpus.samples)
    assert {(c.word, c.baseline, c.candidate) for c in changes} == {("bonjour", 1, 0),
                                                                   ("paris", 0, 1)}


def test_each_hallucination_flag_on_a_built_example():
    scores = score_predictions([
        Prediction("m", "silence", "", "you", "en"),
        Prediction("m", "loop", "the weather is fine",
                   "the weather is fine is fine is fine is fine is fine is fine", "en"),
        Prediction("m", "burst", "go now", "go and then we will all see the end now", "en"),
        Prediction("m", "french", "bonjour tout le monde", "hello everybody", "fr",
                   fields={"decoded_language": "en"}),
        Prediction("m", "clean", "a clean clip", "a clean clip", "en"),
    ])
    samples = {s.id: s for s in scores["m"].corpus.samples}
    decoded = {"french": "en"}
    found = {i: hallucinations.flags(s, decoded.get(i)) for i, s in samples.items()}
    assert found["silence"] == ["non_speech"]
    assert "repetition_loop" in found["loop"]
    assert found["burst"] == ["insertion_burst"]  # 7 inserted words in a row
    assert found["french"] == ["wrong_language"]
    assert found["clean"] == []
    summary = hallucinations.summarize(list(samples.values()), decoded)
    assert summary.counts["non_speech"] == 1 and summary.flagged == 4
    assert summary.rates["insertion_burst"] == 0.4  # the loop inserts 10 words too
    assert summary.wer > summary.wer_without_flagged == 0.0


def test_four_inserted_words_are_not_a_burst():
    scores = _scored([("m", "1", "go now", "go and then we will now")])
    assert hallucinations.flags(scores["m"].corpus.samples[0]) == []


def _accent_case() -> list[Prediction]:
    """Two accents, 40 clips each: the candidate fixes every Québécois clip's error and
    changes nothing on the Parisian ones."""
    rows = []
    for n in range(40):
        for accent in ("paris", "quebec"):
            i = f"{accent}-{n}"
            ref = f"le chat numero {n} dort"
            wrong = f"le chien numero {n} dort"
            base_hyp = wrong if accent == "quebec" or n % 4 == 0 else ref
            cand_hyp = ref if accent == "quebec" else base_hyp
            fields = {"accent": accent, "duration": 2.0 if n % 2 else 5.0}
            rows.append(Prediction("base", i, ref, base_hyp, "fr", fields=fields))
            rows.append(Prediction("tuned", i, ref, cand_hyp, "fr", fields=fields))
    return rows


def test_slices_give_intervals_and_adjusted_verdicts_where_only_one_slice_differs():
    predictions = _accent_case()
    scores = score_predictions(predictions, "base")
    report = analysis_of(predictions, scores, ["accent"], "base")
    rows = {(r["column"], r["value"], r["model"]): r for r in report["slices"]}
    quebec, paris = rows[("accent", "quebec", "tuned")], rows[("accent", "paris", "tuned")]
    assert quebec["samples"] == paris["samples"] == 40
    base_wer = rows[("accent", "quebec", "base")]["wer"]
    assert quebec["wer"] == 0.0 and base_wer > 0.1  # one word of each Québécois clip
    assert quebec["significant"] and quebec["significant_adjusted"]
    assert quebec["verdict"] == "better" and quebec["delta_wer"] < 0
    assert paris["delta_wer"] == 0 and paris["verdict"] == "no significant difference"
    low, high = rows[("accent", "quebec", "base")]["wer_ci"]
    assert low < base_wer < high
    # Clip length is always sliced, with the bucket labels.
    assert {r["value"] for r in report["slices"] if r["column"] == "length"} == {"< 3 s",
                                                                                "3–10 s"}


def test_a_slice_with_too_few_samples_says_so_instead_of_a_verdict():
    predictions = [p for p in _accent_case() if p.id.split("-")[0] == "paris"
                   or int(p.id.split("-")[1]) < 5]
    report = analysis_of(predictions, score_predictions(predictions, "base"), ["accent"],
                         "base")
    (row,) = [r for r in report["slices"] if r["value"] == "quebec" and r["model"] == "tuned"]
    assert row["verdict"] == "too few samples (5 < 10)" and row["delta_wer"] is None


def test_holm_adjustment_withdraws_a_borderline_verdict_among_many_slices():
    rows = [slices.SliceRow("c", str(k), "m", 30, 0.1, None, 0.1, -0.01, None, p, True)
            for k, p in enumerate([0.001, 0.02, 0.03, 0.04])]  # m = 4
    slices._holm(rows)
    assert [r.significant_adjusted for r in rows] == [True, False, False, False]
    assert rows[1].verdict == "better (not after adjusting for the number of slices)"


def test_manifest_columns_are_carried_to_samples_and_hugging_face_rows(tmp_path):
    from core.datasets import extra_columns

    audio = tmp_path / "a.wav"
    audio.write_bytes(b"")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "a.wav", "text": "hi", "accent": "quebec",
                                    "gender": "f", "age": 31}) + "\n")
    (sample,) = load_manifest(manifest)
    assert sample.extra == {"accent": "quebec", "gender": "f", "age": 31}
    assert sample.to_manifest_row()["accent"] == "quebec"
    # A Hugging Face (Common Voice) row: audio and transcript are not slicing columns.
    row = {"audio": {"bytes": b""}, "sentence": "salut", "client_id": "ab", "accent": "belge",
           "up_votes": 2, "segment": None}
    assert extra_columns(row, ("audio", "sentence")) == {"client_id": "ab", "accent": "belge",
                                                         "up_votes": 2, "segment": None}


def test_multilingual_table_lines_up_languages_for_baseline_and_candidate():
    predictions = []
    for n in range(12):
        predictions += [
            Prediction("base", f"fr{n}", "le chat dort", "le chien dort", "fr"),
            Prediction("tuned", f"fr{n}", "le chat dort", "le chat dort", "fr"),
            Prediction("base", f"en{n}", "the cat sleeps", "the cat sleeps", "en"),
            Prediction("tuned", f"en{n}", "the cat sleeps", "the cat sleeps", "en"),
        ]
    report = analysis_of(predictions, score_predictions(predictions, "base"), [], "base")
    table = {r["language"]: r for r in languages_table(report, "base")}
    assert table["fr"]["baseline_wer"] == 1 / 3 and table["fr"]["candidate_wer"] == 0.0
    assert table["fr"]["verdict"] == "better"
    assert table["en"]["delta_wer"] == 0 and table["en"]["verdict"] == "no significant difference"


def test_ert_score_by_and_errors_print_slices_and_anatomy(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in [
        {"id": "1", "model": "m", "reference": "the cat", "hypothesis": "the bat",
         "language": "en", "accent": "a"},
        {"id": "2", "model": "m", "reference": "a dog", "hypothesis": "a dog", "language": "en",
         "accent": "b"}]))
    out = subprocess.run([sys.executable, "-m", "core", "score", str(path), "--by", "accent",
                          "--errors"], capture_output=True, text=True, cwd=REPO, check=True)
    assert "accent=a" in out.stdout and "accent=b" in out.stdout
    assert "cat → bat" in out.stdout
    data = json.loads(subprocess.run(
        [sys.executable, "-m", "core", "score", str(path), "--by", "accent", "--json"],
        capture_output=True, text=True, cwd=REPO, check=True).stdout)
    assert {r["value"] for r in data["analysis"]["slices"] if r["column"] == "accent"} == {
        "a", "b"}
    assert data["analysis"]["errors"]["m"]["substitutions"][0]["ref"] == "cat"
