"""The append-only logs of a run."""

from __future__ import annotations

from core.evaluation import records as records_module
from core.evaluation.records import read_jsonl, read_jsonl_from
from core.evaluation.run_dir import SAMPLES_FILE, RunDir


def test_torn_last_line_is_ignored_and_repaired(tmp_path):
    path = tmp_path / SAMPLES_FILE
    path.write_text('{"model": "m", "id": "1"}\n{"model": "m", "id": "2"')
    assert [r["id"] for r in read_jsonl(path)] == ["1"]
    records = RunDir(tmp_path).records(repair=True)
    records.samples.append({"model": "m", "id": "3"})
    assert [r["id"] for r in read_jsonl(path)] == ["1", "3"]


def test_a_reader_never_cuts_the_line_another_process_is_writing(tmp_path):
    """The UI's progress and scoring ahead open the logs while workers append."""
    path = tmp_path / SAMPLES_FILE
    path.write_text('{"model": "m", "id": "1"}\n{"model": "m", "id": "2"')  # being written
    RunDir(tmp_path).records().sample_rows()
    with path.open("a") as handle:
        handle.write("}\n")  # the write completes
    assert [r["id"] for r in read_jsonl(path)] == ["1", "2"]


def test_a_tail_still_growing_is_not_cut_even_by_the_writer(tmp_path, monkeypatch):
    """An orphan worker of a killed runner may still be writing when a resume starts."""
    path = tmp_path / SAMPLES_FILE
    path.write_text('{"model": "m", "id": "1"}\n{"model": "m", "id": "2"')

    def the_write_goes_on(seconds: float) -> None:
        with path.open("a") as handle:
            handle.write(', "x"')  # more of the line came, not its end yet

    monkeypatch.setattr(records_module.time, "sleep", the_write_goes_on)
    RunDir(tmp_path).records(repair=True)
    with path.open("a") as handle:
        handle.write(': 1}\n')  # the write completes
    assert [r["id"] for r in read_jsonl(path)] == ["1", "2"]


def test_a_log_read_as_it_grows_gives_each_complete_line_once(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "\xc3\xa9"}\n{"a": 3')  # the third is being written
    rows, offset = read_jsonl_from(path)
    assert rows == [{"a": 1}, {"a": "é"}]
    with path.open("ab") as handle:
        handle.write(b'}\n{"garbled\n{"a": 4}\n')
    rows, offset = read_jsonl_from(path, offset)
    assert rows == [{"a": 3}, {"a": 4}]  # the garbled line skipped, nothing read twice
    assert read_jsonl_from(path, offset) == ([], offset)
    assert read_jsonl_from(tmp_path / "absent.jsonl", 5) == ([], 5)


def test_a_run_file_write_that_dies_leaves_the_old_file_whole(tmp_path, monkeypatch):
    """The config, plan and manifest a resume reads are replaced in one rename: a write
    that dies before it leaves the previous file as it was, and no temporary behind."""
    import json
    import os

    import pytest

    run = RunDir(tmp_path / "run")
    path = run._write_json("run_manifest.json", {"samples": 8})

    def dies(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", dies)
    with pytest.raises(OSError):
        run.write_json(path, {"samples": 16, "padding": "x" * 100_000})
    assert json.loads(path.read_text()) == {"samples": 8}
    assert [p.name for p in path.parent.iterdir()] == ["run_manifest.json"]
