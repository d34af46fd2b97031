"""The append-only logs of a run."""

from __future__ import annotations

from core.evaluation.records import read_jsonl
from core.evaluation.run_dir import SAMPLES_FILE, RunDir


def test_torn_last_line_is_ignored_and_repaired(tmp_path):
    path = tmp_path / SAMPLES_FILE
    path.write_text('{"model": "m", "id": "1"}\n{"model": "m", "id": "2"')
    assert [r["id"] for r in read_jsonl(path)] == ["1"]
    records = RunDir(tmp_path).records()
    records.samples.append({"model": "m", "id": "3"})
    assert [r["id"] for r in read_jsonl(path)] == ["1", "3"]
