"""core.compare on hand-made rows and run folders: highlights, CSV, deltas, verdicts."""

from __future__ import annotations

import core.compare as compare_module
from core.compare import (
    LABELS,
    RunInfo,
    compare_models,
    detailed_rows,
    display_rows,
    highlight,
    language_rows,
    list_runs,
    model_rows,
    normalizer_warning,
    speed_labels,
    to_csv,
)
from core.evaluation.summary import ModelSummary
from core.metrics import align, score_sample
from core.scoring import Comparison

import csv
import functools
import io
import json
import math
import re
from dataclasses import asdict
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


def test_to_csv_writes_none_and_nan_alike_as_empty_cells():
    # pandas turns None into NaN in a float column once two runs are in the table.
    rows = [{"model": "a", "wer": 0.125, "rtfx": None},
            {"model": "b", "wer": float("nan"), "rtfx": 3.5, "extra": 1}]
    back = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert back == [{"model": "a", "wer": "0.125", "rtfx": "", "extra": ""},
                    {"model": "b", "wer": "", "rtfx": "3.5", "extra": "1"}]


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
    assert en["baseline_wer"] == 0.0 and 0.5 < en["candidate_wer"] <= 1.0  # fractions
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


# --- model rows: one set of units -----------------------------------------------------------


def _summary(model: str, **kw) -> dict:
    """A model's entry of a consolidated results file, as the results writer makes it."""
    values = dict(model=model, batch="b", status="ok", samples=10, succeeded=9, failures=1,
                  success_rate=0.9, wer=0.1234, cer=0.0456, bleu=71.5, chrf=80.25,
                  rtfx=14.5, mean_latency_s=0.8, band="good", batch_size=4, batch_curve=[],
                  peak_rss_gb=1.25, peak_gpu_gb=None, load_seconds=1.0, error=None,
                  wer_ci=[0.101, 0.152], timed=6, cached=3, rtfx_end_to_end=9.5,
                  mean_compute_s=0.2,
                  languages={"en": {"language": "en", "samples": 5, "wer": 0.1, "cer": 0.05,
                                    "wer_ci": [0.05, 0.2]},
                             "fr": {"language": "fr", "samples": 4, "wer": 0.15, "cer": 0.04,
                                    "wer_ci": None}})
    values.update(kw)
    return asdict(ModelSummary(**values))


def _scored_run(root: Path, run_id: str, models: dict[str, dict]) -> Path:
    folder = root / run_id
    folder.mkdir(parents=True)
    (folder / "plan.json").write_text("{}")
    (folder / "consolidated_results_20260101_000000.json").write_text(json.dumps({
        "run_id": run_id, "dataset": "/data/demo-data/manifest.jsonl", "samples": 10,
        "created": "20260101_000000", "models": models}))
    return folder


def _same(cell: str, value) -> bool:
    """A CSV cell against the JSON value it was written from."""
    if value is None:
        return cell == ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return math.isclose(float(cell), value)
    return cell == str(value)


def test_model_rows_keep_fractions_and_count_what_speed_was_measured_on(tmp_path):
    _scored_run(tmp_path, "20260101-000000-aaaa", {"m": _summary("m")})
    (row,) = model_rows(list_runs(tmp_path))
    assert row["wer"] == 0.1234 and row["cer"] == 0.0456 and row["success_rate"] == 0.9
    assert (row["wer_low"], row["wer_high"]) == (0.101, 0.152)
    assert {k: row[k] for k in ("samples", "timed", "cached", "failures", "skipped")} == \
        {"samples": 10, "timed": 6, "cached": 3, "failures": 1, "skipped": 0}
    assert row["rtfx_end_to_end"] == 9.5 and row["mean_compute_s"] == 0.2
    assert row["mean_latency_s"] == 0.8
    # Every column has a human label for the pages: its own, or a registered figure's.
    from core.figures import FIGURES

    assert set(row) <= set(LABELS) | set(FIGURES)


def test_the_csv_export_and_the_consolidated_json_agree_on_names_and_units(tmp_path):
    models = {"a": _summary("a"),
              "b": _summary("b", rtfx=None, timed=0, cached=10, wer=None, cer=None,
                            wer_ci=None, band=None, rtfx_end_to_end=None)}
    _scored_run(tmp_path, "20260101-000000-aaaa", models)
    _scored_run(tmp_path, "20260102-000000-bbbb", {"a": _summary("a", wer=0.5)})
    runs = list_runs(tmp_path)
    written = {(r["run"], r["model"]): r for r in csv.DictReader(io.StringIO(
        to_csv(model_rows(runs))))}
    assert len(written) == 3
    for run in runs:
        consolidated = json.loads(next(run.path.glob("consolidated_results_*")).read_text())
        for model, summary in consolidated["models"].items():
            row = written[(run.run_id, model)]
            shared = set(row) & set(summary)
            assert {"wer", "cer", "success_rate", "rtfx", "timed", "cached", "failures",
                    "skipped", "mean_latency_s", "mean_compute_s", "rtfx_end_to_end",
                    "peak_rss_gb"} <= shared
            for name in shared:
                assert _same(row[name], summary[name]), (model, name, row[name],
                                                         summary[name])
            low, high = summary["wer_ci"] or (None, None)
            assert _same(row["wer_low"], low) and _same(row["wer_high"], high)
            assert row["dataset"] == consolidated["dataset"]
    assert "nan" not in to_csv(model_rows(runs)).lower()


def test_display_rows_show_percentages_under_labels_and_none_for_missing():
    rows = [{"model": "a", "wer": 0.1234, "wer_low": 0.1, "wer_high": 0.15, "rtfx": None,
             "success_rate": 1.0, "bleu": 70.0, "peak_rss_gb": float("nan")}]
    (shown,) = display_rows(rows, ["model", "wer", "wer_ci", "bleu", "rtfx", "success_rate",
                                   "peak_rss_gb"])
    assert list(shown) == ["model", "WER %", "WER 95 % interval", "BLEU", "RTFx", "success %",
                           "peak RAM GB"]
    assert shown["WER %"] == pytest.approx(12.34) and shown["success %"] == 100.0
    assert shown["WER 95 % interval"] == "10.0–15.0" and shown["BLEU"] == 70.0
    assert shown["RTFx"] is None and shown["peak RAM GB"] is None
    assert rows[0]["wer"] == 0.1234  # the data itself keeps its fractions


def test_language_rows_list_every_model_scored_in_more_than_one_language(tmp_path):
    _scored_run(tmp_path, "20260101-000000-aaaa",
                {"multi": _summary("multi"), "mono": _summary("mono", languages={
                    "en": {"language": "en", "samples": 9, "wer": 0.1, "cer": 0.05,
                           "wer_ci": None}})})
    rows = language_rows(list_runs(tmp_path))
    assert [(r["model"], r["language"]) for r in rows] == [("multi", "en"), ("multi", "fr")]
    assert rows[0]["wer"] == 0.1 and (rows[0]["wer_low"], rows[0]["wer_high"]) == (0.05, 0.2)
    assert rows[1]["wer_low"] is None


def test_speed_labels_say_when_a_model_was_all_cached(tmp_path):
    _scored_run(tmp_path, "20260101-000000-aaaa",
                {"fresh": _summary("fresh", cached=0, timed=9),
                 "cached": _summary("cached", rtfx=None, timed=0, cached=9)})
    labels = speed_labels(list_runs(tmp_path))
    assert labels[("20260101-000000-aaaa", "fresh")] == "14.5"
    assert labels[("20260101-000000-aaaa", "cached")].startswith("— (all cached")


@pytest.mark.slow
def test_a_real_runs_csv_export_matches_its_consolidated_json(tmp_path):
    from core.demo_data import make_demo_dataset
    from core.evaluation import runner
    from core.evaluation.config import RunConfig

    manifest = make_demo_dataset(tmp_path / "demo", langs=("en",), count=2)
    runner.start(RunConfig(dataset=str(manifest), out_dir=str(tmp_path / "runs"),
                           models=["faster-whisper:tiny.en"], use_cache=False))
    runs = list_runs(tmp_path / "runs")
    (row,) = csv.DictReader(io.StringIO(to_csv(model_rows(runs))))
    consolidated = json.loads(next(runs[0].path.glob("consolidated_results_*")).read_text())
    summary = consolidated["models"]["faster-whisper:tiny.en"]
    for name in set(row) & set(summary):
        assert _same(row[name], summary[name]), (name, row[name], summary[name])
    assert 0.0 <= float(row["wer"]) <= 1.0 and float(row["success_rate"]) == 1.0
