"""The append-only logs of a run."""

from __future__ import annotations

from core.evaluation.records import read_jsonl, read_jsonl_from
from core.evaluation.run_dir import SAMPLES_FILE, RunDir


def test_torn_last_line_is_ignored_and_repaired(tmp_path):
    path = tmp_path / SAMPLES_FILE
    path.write_text('{"model": "m", "id": "1"}\n{"model": "m", "id": "2"')
    assert [r["id"] for r in read_jsonl(path)] == ["1"]
    records = RunDir(tmp_path).records()
    records.samples.append({"model": "m", "id": "3"})
    assert [r["id"] for r in read_jsonl(path)] == ["1", "3"]


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
