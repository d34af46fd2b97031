"""One runs folder for everyone: ``ERT_RUNS_DIR`` moves what the CLI writes and the pages read."""

from __future__ import annotations

from core import paths
from core.cli import main
from core.compare import list_runs
from core.evaluation.run_dir import run_dirs

import pytest


def test_runs_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("ERT_RUNS_DIR", raising=False)
    assert paths.runs_dir() == paths.REPO_ROOT / "runs"
    monkeypatch.setenv("ERT_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert paths.runs_dir() == tmp_path / "elsewhere"


@pytest.mark.slow
def test_ert_evaluate_writes_where_the_pages_read(monkeypatch, tmp_path, capsys):
    from core.demo_data import make_demo_dataset

    from ui.common import results_dir

    runs = tmp_path / "my-runs"
    monkeypatch.setenv("ERT_RUNS_DIR", str(runs))
    manifest = make_demo_dataset(tmp_path / "data", langs=("en",), count=1)
    assert main(["evaluate", "--models", "faster-whisper:tiny.en", "--dataset", str(manifest),
                 "--no-cache"]) == 0
    found = list(run_dirs())
    assert len(found) == 1 and found[0].path.parent == runs  # not the repo's runs/
    assert results_dir() == str(runs)
    assert [r.run_id for r in list_runs()] == [found[0].name]  # what the Compare page lists
    assert main(["evaluate", "--resume", found[0].name]) == 0  # found by id in the same place
