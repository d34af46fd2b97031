"""Gemma 3n through ``ert evaluate``: a tiny random-weight model, a worker process, every
output file, and a corrupt clip failing alone."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO
from tests.tiny_models import build_gemma3n


def test_ert_evaluate_runs_gemma3n_and_writes_every_output_file(bench, tmp_path):
    model = build_gemma3n(tmp_path / "tiny-gemma3n")
    registry = tmp_path / "asr_models.toml"
    registry.write_text(f'default = "gemma3n:tiny-random"\n[models."gemma3n:tiny-random"]\n'
                        f'source = "{model}"\nfamily = "gemma3n"\nlanguages = ["*"]\n')
    out = subprocess.run(
        [sys.executable, "-m", "core", "evaluate", "--dataset", str(bench["five"]),
         "--models", "gemma3n:tiny-random", "--registry", str(registry), "--out",
         str(tmp_path / "runs"), "--no-cache", "--max-batch-size", "4"],
        cwd=REPO, text=True, capture_output=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    for pattern in ("batch_*_results_*.json", "consolidated_results_*.json",
                    "consolidated_detailed_*.json", "memory_stats_*.json", "run_manifest.json",
                    "comparison_*.png"):
        assert list(run.glob(pattern)), pattern
    summary = json.loads(next(run.glob("consolidated_results_*.json")).read_text())
    result = summary["models"]["gemma3n:tiny-random"]
    assert result["status"] == "ok" and result["samples"] == 5
    assert result["failures"] == 1 and result["dtype"] in ("float32", "bfloat16")
    detailed = json.loads(next(run.glob("consolidated_detailed_*.json")).read_text())["samples"]
    bad = [r for r in detailed if r["error"]]
    assert len(bad) == 1 and bad[0]["error"].startswith("audio") and "corrupt" in str(
        bad[0]["audio_filepath"])
    assert all(r["hypothesis"] for r in detailed if not r["error"])  # it did transcribe
