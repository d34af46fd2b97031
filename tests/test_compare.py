"""core.compare on hand-made rows and run folders: highlights, CSV, deltas, verdicts."""

from __future__ import annotations

import core.compare as compare_module
from core.compare import (
    RunInfo,
    compare_models,
    detailed_rows,
    highlight,
    list_runs,
    normalizer_warning,
    to_csv,
)
from core.metrics import align, score_sample
from core.scoring import Comparison

import csv
import functools
import io
import json
import re
from pathlib import Path

import pytest

SENTENCES = [
    "the cat sat on the mat", "please close the door", "the train leaves at noon",
    "we went to the beach", "the soup is too hot", "my brother is a nurse",
    "the river flows slowly", "she plays the piano", "the shop sells bread",
    "they built a small house", "the sky is full of stars", "he runs every evening",
    "the museum is closed today", "a cup of coffee please", "the children played outside",
    "our flight was delayed", "the library has many books", "water the plants",
    "the clock is very old", "turn off the lights", "the market opens early",
    "the doctor said rest", "the bridge is finished", "it started raining",
]


def _row(model: str, sample_id: str, reference: str, hypothesis: str,
         language: str | None = "en", **extra) -> dict:
    """A per-sample row as the consolidated detailed file holds it (wer per sample)."""
    return {"id": sample_id, "model": model, "reference": reference, "hypothesis": hypothesis,
            "language": language, "wer": score_sample(reference, hypothesis, language).wer,
            "error": None, "skipped": None, **extra}


def _drop_last_word(text: str) -> str:
    return " ".join(text.split()[:-1])


# --- highlight ------------------------------------------------------------------------------


def _spans(html: str, colour: str) -> list[str]:
    return re.findall(rf'<span style="background:{colour}[^"]*"[^>]*>([^<]*)</span>', html)


def test_highlight_marks_a_substitution_with_the_reference_word():
    html = highlight("the cat sat on the mat", "the dog sat on the mat")
    assert _spans(html, "#fde68a") == ["dog"]
    assert 'title="reference: cat"' in html
    assert html.startswith("the ") and html.endswith("sat on the mat")


def test_highlight_strikes_a_deletion_and_marks_an_insertion():
    deleted = highlight("please close the door", "please close door")
    assert _spans(deleted, "#fecaca") == ["the"]
    assert "line-through" in deleted
    inserted = highlight("please close the door", "please close the big door")
    assert _spans(inserted, "#bbf7d0") == ["big"]
    assert not _spans(inserted, "#fecaca") and not _spans(inserted, "#fde68a")


def test_highlight_of_an_exact_match_has_no_marks():
    assert highlight("The train leaves at noon.", "the train leaves at noon") == \
        "the train leaves at noon"


def test_highlight_escapes_html_in_words(monkeypatch):
    # The normalizer already strips < > & " from words; words that reach the HTML
    # unnormalized must still come out escaped, in the text and in the title attribute.
    monkeypatch.setattr(compare_module, "align", functools.partial(align, normalized=False))
    html = highlight('say "<b>hi</b>" & go', "say <script>alert(1)</script> & go")
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'title="reference: &quot;&lt;b&gt;hi&lt;/b&gt;&quot;"' in html
    assert " &amp; go" in html


def test_highlight_never_lets_markup_through_the_normalizer():
    html = highlight("hello world", "hello <img src=x onerror=alert(1)> world")
    assert "<img" not in html


# --- to_csv ---------------------------------------------------------------------------------


def test_to_csv_writes_a_header_and_one_line_per_row_with_quoting():
    rows = [{"model": "whisper:tiny", "wer": 12.5, "note": 'a, "quoted" note'},
            {"model": "faster-whisper:base", "wer": None, "note": ""}]
    text = to_csv(rows)
    assert text.splitlines()[0] == "model,wer,note"
    back = list(csv.DictReader(io.StringIO(text)))
    assert back == [{"model": "whisper:tiny", "wer": "12.5", "note": 'a, "quoted" note'},
                    {"model": "faster-whisper:base", "wer": "", "note": ""}]


def test_to_csv_of_no_rows_is_empty():
    assert to_csv([]) == ""


# --- compare_models -------------------------------------------------------------------------


def test_compare_models_reports_deltas_and_which_samples_moved():
    rows = []
    for i, text in enumerate(SENTENCES[:6]):
        rows.append(_row("base", f"s{i}", text, text if i % 2 else _drop_last_word(text)))
        rows.append(_row("cand", f"s{i}", text, text if i != 1 else "completely wrong words"))
    result = compare_models(rows, "base", "cand")
    assert result["pairs"] == 6
    wer = next(d for d in result["deltas"] if d.metric == "wer")
    base_errors, cand_errors = 3, 4  # three dropped words; one clip of 4 words all wrong
    words = sum(len(t.split()) for t in SENTENCES[:6])
    assert wer.baseline == pytest.approx(base_errors / words)
    assert wer.candidate == pytest.approx(cand_errors / words)
    assert wer.change_pct == pytest.approx((cand_errors - base_errors) / base_errors * 100)
    assert wer.better is False
    assert [d.metric for d in result["deltas"]] == ["wer", "cer", "bleu", "chrf"]
    assert {m["id"] for m in result["better"]} == {"s0", "s2", "s4"}
    assert [m["id"] for m in result["worse"]] == ["s1"]
    worse = result["worse"][0]
    assert worse["baseline"] == SENTENCES[1] and worse["candidate"] == "completely wrong words"
    assert worse["delta"] == pytest.approx(worse["candidate_wer"] - worse["baseline_wer"])
    assert worse["delta"] > 0
    assert all(m["delta"] < 0 for m in result["better"])


def test_compare_models_orders_better_and_worse_by_the_size_of_the_change():
    rows = []
    for i, text in enumerate(SENTENCES[:4]):
        words = text.split()
        cut = " ".join(words[:len(words) - 1 - i % 2])  # one or two words dropped
        rows += [_row("base", f"s{i}", text, text if i < 2 else cut),
                 _row("cand", f"s{i}", text, cut if i < 2 else text)]
    result = compare_models(rows, "base", "cand")
    assert [m["delta"] for m in result["worse"]] == sorted(
        (m["delta"] for m in result["worse"]), reverse=True)
    assert [m["delta"] for m in result["better"]] == sorted(m["delta"] for m in result["better"])
    assert len(result["worse"]) == len(result["better"]) == 2


def test_compare_models_gives_a_significant_verdict_for_a_clear_gap():
    rows = []
    for i, text in enumerate(SENTENCES):
        rows.append(_row("base", f"s{i}", text, "nothing like it"))
        rows.append(_row("cand", f"s{i}", text, text))
    verdict = compare_models(rows, "base", "cand")["verdict"]
    assert isinstance(verdict, Comparison)
    assert verdict.pairs == len(SENTENCES) and verdict.baseline == "base"
    assert verdict.significant and verdict.verdict == "better"
    assert verdict.candidate_wer == 0.0 and verdict.delta_wer < 0
    low, high = verdict.delta_wer_ci
    assert low <= verdict.delta_wer <= high < 0
    # The other way round the same gap is "worse".
    assert compare_models(rows, "cand", "base")["verdict"].verdict == "worse"


def test_compare_models_finds_no_significant_difference_for_a_chance_gap():
    rows = []
    for i, text in enumerate(SENTENCES[:12]):
        # Each model drops one word, on different halves of the clips: same total errors.
        rows.append(_row("base", f"s{i}", text, _drop_last_word(text) if i < 6 else text))
        rows.append(_row("cand", f"s{i}", text, text if i < 6 else _drop_last_word(text)))
    verdict = compare_models(rows, "base", "cand")["verdict"]
    assert not verdict.significant
    assert verdict.verdict == "no significant difference"
    low, high = verdict.delta_wer_ci
    assert low < 0 < high


def test_compare_models_gives_one_row_per_language_with_its_own_verdict():
    rows = []
    french = ["le chat dort sur la chaise", "il pleut depuis ce matin", "la gare est loin",
              "nous allons au marché", "elle lit un livre", "le café est chaud"]
    for i, text in enumerate(SENTENCES[:6]):  # English: the candidate is much worse
        rows += [_row("base", f"en{i}", text, text),
                 _row("cand", f"en{i}", text, "wrong", "en")]
    for i, text in enumerate(french):  # French: both perfect
        rows += [_row("base", f"fr{i}", text, text, "fr"), _row("cand", f"fr{i}", text, text, "fr")]
    languages = compare_models(rows, "base", "cand")["languages"]
    assert [r["language"] for r in languages] == ["en", "fr"]
    en, fr = languages
    assert en["samples"] == fr["samples"] == 6
    assert en["baseline_wer"] == 0.0 and en["candidate_wer"] > 50
    assert en["verdict"].startswith("worse") and en["candidate_band"] == "to improve"
    assert fr["baseline_wer"] == fr["candidate_wer"] == 0.0
    assert fr["verdict"].startswith("no significant difference")
    assert fr["baseline_band"] == fr["candidate_band"] == "excellent"


def test_compare_models_leaves_out_failed_skipped_and_unpaired_samples():
    text = SENTENCES[0]
    rows = [_row("base", "ok", text, text), _row("cand", "ok", text, _drop_last_word(text)),
            _row("base", "failed", text, ""), _row("cand", "failed", text, "",
                                                   error="audio: corrupt"),
            _row("base", "skipped", text, ""), _row("cand", "skipped", text, "",
                                                    skipped="wrong language"),
            _row("base", "only-base", text, text)]
    rows[2]["error"] = "audio: corrupt"
    result = compare_models(rows, "base", "cand")
    assert result["pairs"] == 1
    assert [m["id"] for m in result["worse"]] == ["ok"] and not result["better"]


def test_compare_models_with_nothing_in_common_has_no_verdict():
    rows = [_row("base", "a", SENTENCES[0], SENTENCES[0]),
            _row("cand", "b", SENTENCES[1], SENTENCES[1])]
    result = compare_models(rows, "base", "cand")
    assert result["pairs"] == 0 and result["verdict"] is None
    assert result["deltas"] == result["better"] == result["worse"] == result["languages"] == []


# --- normalizer_warning ---------------------------------------------------------------------


def _info(run_id: str, normalizer: dict | None) -> RunInfo:
    return RunInfo(run_id, Path(run_id), "data.jsonl", 3, "", ["m"], normalizer)


def test_normalizer_warning_is_silent_for_runs_scored_alike():
    same = {"name": "ert-normalizer", "version": "2"}
    assert normalizer_warning([_info("r1", same), _info("r2", dict(same))]) is None
    assert normalizer_warning([_info("r1", same)]) is None
    assert normalizer_warning([]) is None


def test_normalizer_warning_names_runs_with_different_normalizers():
    warning = normalizer_warning([_info("r1", {"version": "ert-normalizer/2"}),
                                  _info("r2", {"version": "ert-normalizer/1"})])
    assert warning is not None
    assert "r1: ert-normalizer/2" in warning and "r2: ert-normalizer/1" in warning
    assert "ert score RUN --write" in warning


def test_normalizer_warning_calls_a_missing_normalizer_unrecorded():
    warning = normalizer_warning([_info("new", {"version": "ert-normalizer/2"}),
                                  _info("old", None)])
    assert warning is not None and "old: unrecorded" in warning


# --- run folders ----------------------------------------------------------------------------


def _run_folder(root: Path, run_id: str, detailed, normalizer: dict | None = None) -> Path:
    folder = root / run_id
    folder.mkdir(parents=True)
    (folder / "plan.json").write_text("{}")  # what makes a folder an ERT run
    models = sorted({r["model"] for r in (detailed["samples"] if isinstance(detailed, dict)
                                          else detailed)})
    consolidated = {"dataset": "/data/demo/manifest.jsonl", "samples": 2,
                    "created": "2026-01-01", "models": {m: {"wer": 0.1} for m in models}}
    if normalizer is not None:
        consolidated["normalizer"] = normalizer
    (folder / "consolidated_results_20260101_000000.json").write_text(json.dumps(consolidated))
    (folder / "consolidated_detailed_20260101_000000.json").write_text(json.dumps(detailed))
    return folder


def test_detailed_rows_reads_the_normalizer_format(tmp_path):
    samples = [_row("base", "s0", "a b", "a b"), _row("cand", "s0", "a b", "a c")]
    folder = _run_folder(tmp_path, "20260101-000000-aaaa",
                         {"normalizer": {"version": "ert-normalizer/2"}, "samples": samples})
    assert detailed_rows(folder) == samples


def test_detailed_rows_reads_the_old_list_format(tmp_path):
    samples = [_row("base", "s0", "a b", "a b"), _row("cand", "s0", "a b", "a c")]
    folder = _run_folder(tmp_path, "20250101-000000-bbbb", samples)
    assert detailed_rows(folder) == samples


def test_detailed_rows_reads_the_newest_file_and_a_run_without_one_is_empty(tmp_path):
    folder = _run_folder(tmp_path, "20260101-000000-cccc",
                         {"normalizer": None, "samples": [_row("old", "s0", "a", "a")]})
    newer = [_row("new", "s0", "a", "a")]
    (folder / "consolidated_detailed_20260102_000000.json").write_text(
        json.dumps({"normalizer": None, "samples": newer}))
    assert detailed_rows(folder) == newer
    empty = tmp_path / "empty"
    empty.mkdir()
    assert detailed_rows(empty) == []


def test_list_runs_reads_hand_made_folders_newest_first_with_their_normalizer(tmp_path):
    rows = [_row("base", "s0", "a b", "a b")]
    _run_folder(tmp_path, "20250101-000000-aaaa", rows)  # old format, no normalizer
    _run_folder(tmp_path, "20260101-000000-bbbb", {"normalizer": {"version": "2"},
                                                    "samples": rows},
                normalizer={"version": "2"})
    (tmp_path / "not-a-run").mkdir()
    runs = list_runs(tmp_path)
    assert [r.run_id for r in runs] == ["20260101-000000-bbbb", "20250101-000000-aaaa"]
    assert runs[0].normalizer == {"version": "2"} and runs[1].normalizer is None
    assert runs[0].models == ["base"] and runs[0].samples == 2
    assert detailed_rows(runs[1]) == rows
    assert "unrecorded" in normalizer_warning(runs)
