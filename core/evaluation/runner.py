"""Running an evaluation: plan, one worker process per batch, consolidate, resume.

The runner never loads a model itself: each batch runs in fresh workers, local processes
(:mod:`core.evaluation.worker_processes`) or Ray tasks, whichever
:mod:`core.evaluation.executors` picks, so when a batch ends its memory goes back to the
system, and a worker that dies (OOM killer, SIGKILL) costs only its unfinished step:
every finished sample is already on disk. What the run is, is planned by
:mod:`core.evaluation.run_plan` and written down by :mod:`core.evaluation.run_manifest`.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps before torch)
from core import paths
from core.asr.registry import AsrRegistry
from core.bytecode import child_environment
from core.datasets import load_dataset_spec
from core.devices import is_cuda
from core.evaluation import run_manifest
from core.evaluation.config import RunConfig
from core.evaluation.executors import executor_for
from core.evaluation.planner import Plan
from core.evaluation.results import ScoreAhead, write_results
from core.evaluation.run_dir import RunDir, run_dirs
from core.evaluation.run_dir import find_run as find_run_dir
from core.evaluation.run_error import RunError
from core.evaluation.run_plan import plan_on_cluster, plan_samples

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Progress = Callable[[dict[str, Any]], None]


@dataclass
class RunOutcome:
    run_dir: Path
    plan: Plan
    files: dict[str, Path] = field(default_factory=dict)
    cancelled: bool = False
    worker_failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what went wrong and was recovered
    results_seconds: float = 0.0  # scoring and writing the result files, after the workers


def is_running(run_dir: Path) -> bool:
    """Whether a live runner holds this run (a lock left by a killed runner does not count)."""
    return RunDir(run_dir).is_running()


def active_run(out_dir: Path | None = None) -> Path | None:
    """The run currently going in ``out_dir``, if any (for 'one run at a time')."""
    return next((run.path for run in run_dirs(out_dir) if run.is_running()), None)


def prepare(config: RunConfig, registry: AsrRegistry | None = None,
            ask_cluster: bool = True) -> Path:
    """Plan a new run and write its folder (config, plan, manifest); run nothing yet.

    ``ask_cluster=False`` (the UI's Start): a cluster run's plan is left to its runner
    process, which joins the cluster (:func:`~core.evaluation.run_plan.plan_on_cluster`),
    never the page's server."""
    # Workers run from the repo root: every path in the saved config is absolute.
    config.out_dir = str(Path(config.out_dir).expanduser().resolve())
    if Path(config.dataset).expanduser().exists():
        config.dataset = str(Path(config.dataset).expanduser().resolve())
    if config.registry_path:
        config.registry_path = str(Path(config.registry_path).expanduser().resolve())
    run = RunDir(config.run_dir)
    if run.exists:
        return run.path
    samples = load_dataset_spec(config.dataset, config.samples, config.seed)
    if not samples:
        raise RunError(f"the dataset {config.dataset} has no samples")
    try:
        config.resolve_conditions()
        config.work_items(samples)  # e.g. babble with too few clips
    except ValueError as exc:  # a condition that cannot run: said before anything is written
        raise RunError(str(exc)) from exc
    plan = plan_samples(config, registry, samples, ask_cluster)
    items = config.work_items(samples)  # with the durations the plan read
    if not plan.batches:
        reasons = "; ".join(f"{r.model}: {r.reason}" for r in plan.refused)
        raise RunError(f"nothing fits the memory budget ({reasons})")
    if config.baseline and config.baseline not in plan.models:
        raise RunError(f"the baseline {config.baseline} is not one of the run's models "
                       f"({', '.join(plan.models)})")
    run_manifest.write(run, config, plan, items)
    return run.path


def start(config: RunConfig, progress: Progress | None = None,
          registry: AsrRegistry | None = None) -> RunOutcome:
    """Plan and run a new evaluation in this process (or continue one with the same id)."""
    return _execute(prepare(config, registry), progress)


def launch(config: RunConfig, registry: AsrRegistry | None = None) -> Path:
    """Start a run in a background process that outlives the caller (the UI's Start)."""
    running = active_run(Path(config.out_dir).expanduser().resolve())
    if running is not None:
        raise RunError(f"run {running.name} is already going in this results folder")
    return spawn(prepare(config, registry, ask_cluster=False))


def spawn(run_dir: Path) -> Path:
    """Run (or resume) ``run_dir`` detached: its own session, log in the run folder."""
    run_dir = Path(run_dir).resolve()
    run = RunDir(run_dir)
    run.clear_cancel()
    log = run.runner_log.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "core.evaluation.runner", str(run_dir)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=child_environment(), cwd=Path(__file__).resolve().parents[2],
                            start_new_session=True)
    log.close()
    # Reap the runner when it ends, without blocking the caller (the Streamlit page): a child
    # nobody waits for stays a <defunct> zombie under the server, and a zombie still answers
    # os.kill(pid, 0), so the stale lock of a killed runner would read as "running" forever.
    # The thread is a daemon: it never keeps the caller alive, and if the caller exits first
    # the runner (its own session) is adopted and reaped by init.
    threading.Thread(target=proc.wait, name=f"ert-reap-{run_dir.name}", daemon=True).start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not run.is_running():
        time.sleep(0.05)  # so the page shows it running on its next draw
    return run_dir


def resume(run_dir: Path, progress: Progress | None = None) -> RunOutcome:
    """Continue a cancelled, killed or crashed run; finished samples are never redone."""
    run = RunDir(Path(run_dir).resolve())
    if not run.exists:
        raise RunError(f"{run.path} is not an ERT run (no plan)")
    run.clear_cancel()
    return _execute(run.path, progress)


def find_run(run_id: str, out_dir: str | Path | None = None) -> Path:
    found = find_run_dir(run_id, out_dir)
    if found is None:
        raise RunError(f"no run {run_id!r} in {out_dir or paths.runs_dir()}")
    return found.path


def rescore(run_dir: Path, strip_accents: bool = False) -> dict[str, Path]:
    """Rewrite a run's consolidated files from its records with today's normalizer."""
    run = RunDir(run_dir)
    plan, manifest = run_manifest.read(run)
    return write_results(run, plan, manifest, manifest["samples"], strip_accents)


def _execute(run_dir: Path, progress: Progress | None) -> RunOutcome:
    run = RunDir(run_dir)
    holder = run.acquire()
    if holder is not None:
        raise RunError(f"run {run.name} is already going (pid {holder})")
    try:
        plan, manifest = run.read_plan(), run.read_manifest()
        config = run.read_config()
        plan = plan_on_cluster(run, config, plan)
        outcome = RunOutcome(run_dir=run.path, plan=plan)
        executor = executor_for(run, config, plan)
        run.records(repair=True)  # a crash's torn line cut while no worker writes
        # GPU workers leave the CPU idle: score their samples as they come (not CPU workers'
        # cores).
        ahead = ScoreAhead(run.records()) if is_cuda(config.device) else None

        def waiting() -> None:
            """While workers run: the caller's progress, and scoring ahead."""
            if progress:
                progress(run.read_status())
            if ahead:
                ahead.step()

        try:
            for index in range(len(plan.batches)):
                if run.cancel_requested():
                    outcome.cancelled = True
                    break
                failures, notes = executor.run(index, waiting)
                outcome.worker_failures += failures
                outcome.notes += notes
        finally:
            executor.close()  # workers started ahead: a cancel, or an error
        run.drop_claims()
        outcome.cancelled = outcome.cancelled or run.cancel_requested()
        began = time.perf_counter()
        outcome.files = write_results(run, plan, manifest, manifest["samples"])
        outcome.results_seconds = time.perf_counter() - began
        return outcome
    finally:
        run.release()


def main(argv: list[str] | None = None) -> int:
    """``python -m core.evaluation.runner RUN_DIR``: what :func:`spawn` starts."""
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m core.evaluation.runner RUN_DIR", file=sys.stderr)
        return 2
    outcome = resume(Path(args[0]))
    return 1 if outcome.worker_failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
