"""A run's results: scored ahead while GPU workers decode, only summed at the end."""

from __future__ import annotations

from core import metrics
from core.evaluation.records import RunRecords, SampleRecord
from core.evaluation.results import ScoreAhead, summarize
from core.evaluation.run_dir import LONG_LIST, RunDir, readable_json

import json
import subprocess
import sys
from pathlib import Path


def _sample(i: int, **kw: object) -> SampleRecord:
    values = dict(id=f"s{i}", model="whisper:x", batch="b", audio_filepath=None,
                  reference=f"le chat numéro {i} dort", hypothesis=f"le chat {i} dort",
                  language="fr", duration=1.0, time=0.1)
    values.update(kw)
    return SampleRecord(**values)  # type: ignore[arg-type]


def test_samples_scored_ahead_are_not_scored_again_at_the_end(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(metrics, "_PRIMED", {})
    records = RunRecords(tmp_path / "samples.jsonl", tmp_path / "models.jsonl")
    ahead = ScoreAhead(records)
    for i in range(6):
        records.add_sample(_sample(i))
    records.add_sample(_sample(6, hypothesis="", error="audio: unreadable"))
    records.add_sample(_sample(7, hypothesis="", skipped="wrong language: en"))
    ahead._next = 0.0  # due now
    ahead.step()
    records.add_sample(_sample(8))  # recorded after the last step
    scored: list[int] = []
    real = metrics._score_part
    monkeypatch.setattr(metrics, "_score_part", lambda rows: scored.append(len(rows)) or
                        real(rows))
    summaries, _rows = summarize(records)
    assert scored == [1]  # only the sample recorded after the step
    assert summaries["whisper:x"].succeeded == 7
    fresh = summaries["whisper:x"].wer
    monkeypatch.setattr(metrics, "_PRIMED", {})
    assert summarize(records)[0]["whisper:x"].wer == fresh


def test_scoring_ahead_that_fails_stops_quietly_and_the_end_still_scores(tmp_path, monkeypatch
                                                                        ) -> None:
    monkeypatch.setattr(metrics, "_PRIMED", {})
    records = RunRecords(tmp_path / "samples.jsonl", tmp_path / "models.jsonl")
    records.add_sample(_sample(0))
    ahead = ScoreAhead(records)
    ahead._next = 0.0

    def broken(rows: object) -> None:
        raise RuntimeError("a scoring bug")

    monkeypatch.setattr(metrics, "_score_part", broken)
    ahead.step()  # the run goes on
    assert ahead._next == float("inf")
    monkeypatch.undo()
    assert summarize(records)[0]["whisper:x"].succeeded == 1


def test_result_files_hold_the_same_json_with_one_sample_a_line(tmp_path) -> None:
    samples = [{"id": f"s{i}", "hypothesis": "l'été « déjà »", "wer": i / 3, "cer": None,
                "path": Path("/a") / str(i), "nested": {"k": [1, 2]}}
               for i in range(LONG_LIST + 5)]
    data = {"normalizer": {"name": "ert", "languages": ["fr", "en"], "empty": {}},
            "samples": samples, "short": list(range(LONG_LIST)), "ids": tuple(range(40)),
            "keys": {1: "a", None: "b"}, "nan": float("nan"), "empty_list": []}
    expected = json.loads(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    text = readable_json(data)
    got = json.loads(text)
    assert got.pop("nan") != got.pop("nan", 0)  # NaN written as JSON's NaN, like json.dumps
    expected.pop("nan")
    assert got == expected
    lines = text.splitlines()
    assert sum(line.lstrip().startswith('{"id": "s') for line in lines) == len(samples)
    assert "déjà" in text  # not escaped, as before
    path = RunDir(tmp_path).write_json(tmp_path / "r.json", data)
    assert path.read_text() == text


def test_scoring_ahead_loads_the_plotting_library_before_the_run_ends(tmp_path) -> None:
    code = ("import sys\nfrom core.evaluation.records import RunRecords\n"
            "from core.evaluation.results import ScoreAhead\nfrom pathlib import Path\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n"
            f"ahead = ScoreAhead(RunRecords(Path({str(tmp_path / 's.jsonl')!r}), "
            f"Path({str(tmp_path / 'm.jsonl')!r})))\n"
            "ahead.step()\nassert 'matplotlib.pyplot' not in sys.modules  # not due yet\n"
            "ahead._next = 0.0\nahead.step()\nprint('matplotlib.pyplot' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == "True", done.stderr


def test_every_run_folder_has_csv_copies_of_its_results(tmp_path) -> None:
    """``results.csv`` (a row per model, the consolidated file's fields and units) and
    ``samples.csv`` (a row per sample of the detailed file) beside the JSON files."""
    from core.evaluation.planner import Plan, PlannedBatch, Strategy
    from core.evaluation.results import write_results
    from core.evaluation.run_dir import RESULTS_CSV, SAMPLES_CSV

    import csv

    run = RunDir(tmp_path / "run")
    records = run.records()
    for model in ("whisper:x", "whisper:y"):
        for i in range(5):
            hypothesis = f"le chat {i} dort" if model == "whisper:x" else f"le chien {i} dort"
            records.add_sample(_sample(i, model=model, hypothesis=hypothesis))
    records.add_sample(_sample(5, model="whisper:y", hypothesis="", error="audio: unreadable"))
    plan = Plan("cpu", 1.0, 1.0, Strategy.CONSERVATIVE,
                [PlannedBatch("b", ["whisper:x", "whisper:y"], 0.2, "two models")])
    run.write_plan(plan)
    manifest = {"run_id": "run", "samples": 6, "config": {"baseline": "whisper:x"}}
    files = write_results(run, plan, manifest, 6)

    def read(name: str) -> list[dict[str, str]]:
        with (run.path / name).open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))

    assert files["results_csv"] == run.path / RESULTS_CSV
    consolidated = json.loads(files["consolidated"].read_text())["models"]
    models = read(RESULTS_CSV)
    assert [row["model"] for row in models] == list(consolidated)
    for row in models:
        figures = consolidated[row["model"]]
        assert float(row["wer"]) == figures["wer"]  # fractions, like the JSON
        assert [float(row["wer_low"]), float(row["wer_high"])] == figures["wer_ci"]
        assert json.loads(row["languages"]) == figures["languages"]
        assert set(figures) - {"wer_ci", "figures"} <= set(row)
        assert set(figures["figures"]) <= set(row)  # each registered figure a column
    assert json.loads(models[1]["baseline"])["verdict"] == consolidated["whisper:y"][
        "baseline"]["verdict"]
    detailed = json.loads(files["detailed"].read_text())["samples"]
    samples = read(SAMPLES_CSV)
    assert len(samples) == len(detailed) == 11
    for row, sample in zip(samples, detailed, strict=True):
        assert (row["model"], row["id"], row["reference"]) == (
            sample["model"], sample["id"], sample["reference"])
        assert (float(row["wer"]) if row["wer"] else None) == sample["wer"]
    assert "numéro" in (run.path / SAMPLES_CSV).read_text(encoding="utf-8")


def test_a_cancelled_model_says_how_far_it_got_and_counts_no_unreached_sample_as_failed(
        tmp_path) -> None:
    """Issue 27: a model cancelled after 4 of 12 samples showed "success 33 %" with 0
    failures."""
    from core.evaluation.records import ModelRecord
    from core.evaluation.summary import status_label

    records = RunRecords(tmp_path / "samples.jsonl", tmp_path / "models.jsonl")
    for i in range(4):
        records.add_sample(_sample(i))
    records.add_model(ModelRecord(model="whisper:x", batch="b", status="cancelled",
                                  samples_done=4, started=1.0, ended=2.0))
    summary = summarize(records, expected_samples=12)[0]["whisper:x"]
    assert status_label(summary) == "cancelled (4 of 12 done)"
    assert summary.success_rate == 1.0 and summary.failures == 0
