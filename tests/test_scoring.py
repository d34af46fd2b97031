"""``ert score`` and the scoring layer: run folders, NeMo JSONL, ERT rows, intervals, verdicts."""

from __future__ import annotations

from core.cli import main
from core.evaluation.config import RunConfig
from core.evaluation.planner import Plan, PlannedBatch, Strategy
from core.evaluation.records import SampleRecord
from core.evaluation.run_dir import RunDir
from core.scoring import Prediction, PredictionsError, read_predictions, score_predictions

import json
from pathlib import Path

import pytest

REFS = ["the cat sat on the mat", "a dog barks at night", "we walk to the park",
        "she reads a long book", "the sun is hot today", "he plays the piano well"]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _score_json(capsys, *args: str) -> dict:
    assert main(["score", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _drop_last_word(text: str) -> str:
    return " ".join(text.split()[:-1])


def test_score_reads_nemo_jsonl_and_names_models_by_file_stem(tmp_path, capsys):
    good = _jsonl(tmp_path / "good.jsonl", [
        {"audio_filepath": f"a{i}.wav", "text": r, "pred_text": r, "duration": 2.0}
        for i, r in enumerate(REFS)])
    bad = _jsonl(tmp_path / "bad.jsonl", [
        {"audio_filepath": f"a{i}.wav", "text": r, "pred_text": _drop_last_word(r)}
        for i, r in enumerate(REFS)])
    doc = _score_json(capsys, str(good), str(bad), "--baseline", "good")
    models = {m["model"]: m for m in doc["models"]}
    assert set(models) == {"good", "bad"}
    assert models["good"]["wer"] == 0 and models["good"]["samples"] == 6
    assert {"model", "samples", "wer", "cer", "wer_ci"} <= set(models["good"])
    words = sum(len(r.split()) for r in REFS)
    assert models["bad"]["wer"] == pytest.approx(6 / words)
    low, high = models["bad"]["wer_ci"]
    assert low <= models["bad"]["wer"] <= high
    assert models["bad"]["delta_wer"] == pytest.approx(6 / words)
    assert models["bad"]["significant"] is True  # one error on every clip
    assert "delta_wer" not in models["good"]
    assert doc["normalizer"]["version"]


def test_score_reads_ert_rows_with_a_model_column(tmp_path, capsys):
    rows = [{"id": str(i), "model": m, "reference": r,
             "hypothesis": r if m == "a" or i else "completely different words here"}
            for m in ("a", "b") for i, r in enumerate(REFS)]
    doc = _score_json(capsys, str(_jsonl(tmp_path / "rows.jsonl", rows)), "--baseline", "a")
    b = next(m for m in doc["models"] if m["model"] == "b")
    assert b["delta_wer"] > 0
    assert b["significant"] is False  # one bad clip out of six: could be chance
    assert b["verdict"] == "no significant difference"


def test_score_table_is_the_default_output(tmp_path, capsys):
    path = _jsonl(tmp_path / "m.jsonl", [{"text": r, "pred_text": r} for r in REFS])
    assert main(["score", str(path)]) == 0
    out = capsys.readouterr().out
    assert "WER %" in out and "95% interval" in out and "m " in out


def test_score_on_a_run_folder_rescores_and_writes(tmp_path, capsys):
    config = RunConfig(dataset="unused", models=["x", "y"], out_dir=str(tmp_path),
                       run_id="run1", baseline="x")
    run = config.run_dir
    RunDir(run).write_config(config)
    records = RunDir(run).records()
    for i, ref in enumerate(REFS):
        for model, hyp in (("x", ref), ("y", _drop_last_word(ref))):
            records.add_sample(SampleRecord(str(i), model, "b1", None, ref, hyp, "en", 2.0, 0.1))
    records.add_sample(SampleRecord("9", "y", "b1", None, "bonjour", "", "fr", 1.0, 0.0,
                                    skipped="wrong language"))
    RunDir(run).write_plan(Plan("cpu", 1.0, 1.0, Strategy.CONSERVATIVE,
                                [PlannedBatch("b1", ["x", "y"], 0.2, "two small models")]))
    RunDir(run).write_manifest({"run_id": "run1", "samples": 6, "config": config.to_dict()})
    doc = _score_json(capsys, str(run))
    assert doc["baseline"] == "x"  # the run's own baseline
    y = next(m for m in doc["models"] if m["model"] == "y")
    assert y["samples"] == 6  # the skipped French sample is not scored
    assert y["significant"] and y["verdict"] == "worse"
    assert main(["score", str(run), "--write"]) == 0
    written = json.loads(next(run.glob("consolidated_results_*.json")).read_text())
    assert written["normalizer"]["version"] == doc["normalizer"]["version"]
    assert written["models"]["y"]["wer_ci"] and written["models"]["y"]["skipped"] == 1
    assert written["models"]["y"]["baseline"]["verdict"] == "worse"


def test_score_explains_bad_input_and_exits_2(tmp_path, capsys):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "a", "pred_text": "a"}\n{not json\n')
    assert main(["score", str(broken)]) == 2
    assert "broken.jsonl:2" in capsys.readouterr().err
    odd = _jsonl(tmp_path / "odd.jsonl", [{"sentence": "a"}])
    assert main(["score", str(odd)]) == 2
    assert "pred_text" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["score", str(empty)]) == 2
    assert main(["score", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["score", str(odd.parent / "nope"), "--baseline", "z"]) == 2


def test_unknown_baseline_is_refused(tmp_path):
    path = _jsonl(tmp_path / "m.jsonl", [{"text": r, "pred_text": r} for r in REFS])
    with pytest.raises(PredictionsError, match="baseline"):
        score_predictions(read_predictions(path), baseline="other")


def test_language_fills_rows_without_one_and_per_language_figures_appear(tmp_path):
    rows = [{"text": "il a vingt-deux ans", "pred_text": "Il a 22 ans.", "language": "fr"},
            {"text": "the colour is red", "pred_text": "the color is red"},
            {"text": "good morning", "pred_text": "good evening"}]
    scores = score_predictions(read_predictions(_jsonl(tmp_path / "m.jsonl", rows), "en"))
    m = scores["m"]
    assert set(m.languages) == {"en", "fr"}
    assert m.languages["fr"].wer == 0  # digits and words agree in French
    assert m.languages["en"].wer == pytest.approx(1 / 6)  # colour/color agree, evening does not


def test_strip_accents_is_an_option_recorded_with_the_scores(tmp_path, capsys):
    path = _jsonl(tmp_path / "m.jsonl", [{"text": "il était à l'école", "language": "fr",
                                          "pred_text": "il etait a l'ecole"}])
    kept = _score_json(capsys, str(path))
    assert kept["models"][0]["wer"] > 0 and kept["normalizer"]["strip_accents"] is False
    stripped = _score_json(capsys, str(path), "--strip-accents")
    assert stripped["models"][0]["wer"] == 0 and stripped["normalizer"]["strip_accents"] is True


def test_intervals_do_not_depend_on_the_order_of_the_rows() -> None:
    """The same transcripts in another order (another file, a resumed run) give the same
    intervals, the paired change's and the per-language ones included."""
    import random

    rng = random.Random(1)
    words = ["le", "chat", "dort", "sur", "la", "table", "près", "de", "la", "fenêtre",
             "ouverte", "ce", "matin"]
    rows = []
    for i in range(40):
        ref = " ".join(rng.sample(words, 8))
        for model in ("base", "cand"):
            hyp = " ".join(w for w in ref.split() if rng.random() > (0.3 if model == "base"
                                                                    else 0.2))
            rows.append(Prediction(model, f"s{i}", ref, hyp, "fr" if i % 3 else "en"))
    shuffled = rows[:]
    rng.shuffle(shuffled)

    def figures(predictions: list[Prediction]) -> dict[str, object]:
        scores = score_predictions(predictions, baseline="base")
        return {m: (s.wer_ci, s.comparison and s.comparison.delta_wer_ci,
                    {k: v.wer_ci for k, v in s.languages.items()}) for m, s in scores.items()}

    assert figures(shuffled) == figures(rows)
    assert figures(list(reversed(rows))) == figures(rows)


FRENCH = [("Le chat est sur la table, n'est-ce pas ?", "le chat est sur la table n est ce pas"),
          ("Il a vingt-deux ans depuis le premier mai.", "il a 22 ans depuis le 1er mai"),
          ("Nous sommes dix mille dans la rue avec elle.",
           "nous sommes 10 000 dans la rue avec elle"),
          ("C'est le troisième jour pour vous.", "c est le 3e jour pour vous")]


def test_score_reads_the_language_of_a_file_that_names_none_from_its_references(
        tmp_path, capsys):
    path = _jsonl(tmp_path / "fr.jsonl", [{"text": r, "pred_text": h} for r, h in FRENCH])
    assert main(["score", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["models"][0]["wer"] == 0  # French rules: 22 / vingt-deux, 1er / premier
    assert set(doc["models"][0]["languages"]) == {"fr"}
    assert doc["language_sources"] == [{"source": str(path), "language": "fr",
                                        "from": "references", "rows_without_language": 4}]
    assert "read as French" in captured.err and "warning" not in captured.err
    named = _score_json(capsys, str(path), "--language", "en")  # the option still decides
    assert named["language_sources"][0]["from"] == "--language"
    assert named["models"][0]["wer"] > 0


def test_score_warns_when_the_references_do_not_tell_the_language(tmp_path, capsys):
    path = _jsonl(tmp_path / "short.jsonl", [{"text": "Bonjour 22", "pred_text": "bonjour 22"},
                                             {"text": "OK", "pred_text": "ok"}])
    assert main(["score", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["language_sources"][0]["from"] == "unknown"
    assert "warning" in captured.err and "basic normalizer" in captured.err
    assert "--language fr" in captured.err
    named = _jsonl(tmp_path / "named.jsonl", [{"text": "OK", "pred_text": "ok",
                                               "language": "fr"}])
    assert main(["score", str(named)]) == 0
    assert capsys.readouterr().err == ""  # every row names its language: nothing to say
