"""The evaluation subcommands of ``ert``."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_cli_lists_batches_analyzes_and_monitors(tmp_path, bench):
    def ert(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, text=True,
                              capture_output=True, check=True, timeout=300).stdout

    assert "batch_1_light" in ert("evaluate", "--list-batches")
    out = ert("analyze", "--dataset", str(bench["five"]), "--batches", "batch_1_light")
    assert "strategy" in out and "batch_1_light" in out and "estimated time" in out
    out = ert("monitor", "--duration", "1.2", "--log-interval", "0.5", "--out", str(tmp_path))
    assert "RAM" in out and list(tmp_path.glob("memory_stats_*.json"))
    for command in ("evaluate", "analyze", "monitor", "demo-data"):
        assert "Example" in ert(command, "--help") or "example" in ert(command, "--help")


def test_the_report_names_the_dataset_units_counts_and_what_speed_was_measured_on(
        tmp_path, capsys):
    from core.evaluation.cli_report import print_report
    from core.evaluation.summary import ModelSummary

    import json
    from dataclasses import asdict
    from types import SimpleNamespace

    def summary(model: str, **kw) -> dict:
        values = dict(model=model, batch="b", status="ok", samples=24, succeeded=24,
                      failures=0, success_rate=1.0, wer=0.125, cer=0.05, bleu=70.0, chrf=80.0,
                      rtfx=12.34, mean_latency_s=0.5, band="good", batch_size=4,
                      batch_curve=[], peak_rss_gb=1.0, peak_gpu_gb=None, load_seconds=1.0,
                      error=None, wer_ci=[0.1, 0.15], timed=10, cached=14)
        values.update(kw)
        return asdict(ModelSummary(**values))

    run = tmp_path / "20260101-000000-abcd"
    run.mkdir()
    (run / "plan.json").write_text("{}")
    (run / "consolidated_results_20260101_000000.json").write_text(json.dumps({
        "dataset": "/x/runs/demo-data/manifest.jsonl", "samples": 24, "decoding": "independent",
        "normalizer": {"version": "ert-normalizer/2"},
        "models": {"fast": summary("fast"),
                   "cached": summary("cached", rtfx=None, timed=0, cached=24),
                   "broken": summary("broken", status="failed", succeeded=0, failures=1,
                                     success_rate=0.0, wer=None, cer=None, bleu=None,
                                     chrf=None, rtfx=None, wer_ci=None, timed=0, cached=0,
                                     samples=1, batch_size=None)}}))
    assert print_report(SimpleNamespace(run_dir=run, worker_failures=[], cancelled=False)) == 0
    out = capsys.readouterr().out
    assert "dataset demo-data · 24 samples" in out and "manifest.jsonl" not in out
    header = next(line for line in out.splitlines() if line.startswith("model"))
    for column in ("WER %", "WER 95 %", "CER %", "success %", "timed", "cached", "failed",
                   "skipped", "RTFx"):
        assert column in header
    lines = {line.split()[0]: line for line in out.splitlines()[3:] if line.strip()}
    assert lines["fast"].endswith("12.3 on 10 of 24 clips") and "10.0–15.0" in lines["fast"]
    assert lines["cached"].endswith("— (all cached)")
    assert "None" not in out and lines["broken"].endswith("—  —")  # no WER, no speed


def test_a_run_that_showed_progress_bars_still_scores_over_forked_processes() -> None:
    """tqdm's monitor thread, which the CLI's bars (or any tqdm bar) start, would keep
    core.parallel scoring a large run on one core (in a fresh interpreter: other tests leave
    threads in this one)."""
    code = ("import os\n"
            "from core import parallel\n"
            "from core.evaluation.commands import _progress_printer\n"
            "def pids(part): return os.getpid()\n"
            "show = _progress_printer()\n"
            "show({'model': 'whisper:tiny', 'total': 3, 'done': 1, 'batch_size': 1})\n"
            "parallel.usable_cores = lambda: 2\n"
            "ran = parallel.fork_map(pids, list(range(10)), 5)\n"
            "print(len(ran), os.getpid() not in ran, parallel.single_threaded())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "2 True True"


def test_the_progress_bars_end_at_what_the_run_recorded(tmp_path, monkeypatch, capsys) -> None:
    """The runner polls the live status, so a model's last steps can fall between two polls
    (a bar left at 11/17): when a model gives way to the next and when the run ends, its bar
    takes the records' count, per device with data-parallel workers."""
    from core.evaluation import commands, runner
    from core.evaluation.records import SampleRecord
    from core.evaluation.run_dir import RunDir

    from types import SimpleNamespace

    run = RunDir(tmp_path / "run")
    run.write_manifest({"samples": 17})
    shown: list = []
    real_printer = commands._progress_printer
    monkeypatch.setattr(commands, "_progress_printer",
                        lambda run_dir=None: shown.append(real_printer(run_dir)) or shown[-1])
    monkeypatch.setattr(commands, "_plan", lambda args, config: SimpleNamespace(
        describe=lambda: "the plan"))
    monkeypatch.setattr(commands, "print_report", lambda outcome: 0)

    def fake_start(config, progress, parallel: bool = False):
        records = run.records()
        for model in ("a", "b"):
            for i in range(17):
                device = f"cuda:{i % 2}" if parallel else None
                records.add_sample(SampleRecord(str(i), model, "b1", None, "x", "x", "en", 1.0,
                                                0.1, device=device))
                if i == 10 and parallel:  # each worker's share was about half
                    progress({"model": model, "shards": [
                        {"model": model, "device": "cuda:0", "total": 8, "done": 6},
                        {"model": model, "device": "cuda:1", "total": 9, "done": 5}]})
                elif i == 10:  # the last poll of this model saw 11 of 17
                    progress({"model": model, "total": 17, "done": 11, "batch_size": 4})
        return SimpleNamespace(run_dir=run.path)

    monkeypatch.setattr(runner, "start", fake_start)
    assert commands._run(SimpleNamespace(), SimpleNamespace(run_dir=run.path)) == 0
    bars = shown[-1].bars
    assert {key: (bar.n, bar.total) for key, bar in bars.items()} == {"a": (17, 17),
                                                                        "b": (17, 17)}
    assert "17/17" in capsys.readouterr().err and all(bar.disable for bar in bars.values())

    (run.path / "samples.jsonl").unlink()
    monkeypatch.setattr(runner, "start", lambda config, progress: fake_start(config, progress,
                                                                           parallel=True))
    assert commands._run(SimpleNamespace(), SimpleNamespace(run_dir=run.path)) == 0
    assert {key: (bar.n, bar.total) for key, bar in shown[-1].bars.items()} == {
        "a · cuda:0": (9, 9), "a · cuda:1": (8, 8), "b · cuda:0": (9, 9), "b · cuda:1": (8, 8)}
