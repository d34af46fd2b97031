"""Running an evaluation: plan, one worker process per batch, consolidate, resume.

The runner never loads a model itself: each batch runs in a fresh worker
(:mod:`core.evaluation.worker`), so when a batch ends its memory goes back to
the system, and a worker that dies (OOM killer, SIGKILL) costs only its
unfinished step: every finished sample is already on disk.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps before torch)
from core import paths
from core.asr.dtype import load_dtype
from core.asr.registry import AsrRegistry
from core.asr.spec import AsrModelSpec
from core.bytecode import child_environment
from core.datasets import Sample, load_dataset_spec
from core.durations import DurationReport, fill_durations
from core.evaluation import cluster, replicas, speed
from core.evaluation.config import RunConfig
from core.evaluation.measurements import MeasurementStore
from core.evaluation.planner import BUDGET_SHARE, Plan, PlannedBatch, make_plan, planned_dtype
from core.evaluation.results import ScoreAhead, write_results
from core.evaluation.run_dir import RunDir, run_dirs
from core.evaluation.run_dir import find_run as find_run_dir
from core.evaluation.shards import Shard, shards
from core.languages import language_key
from core.system import read_machine

import contextlib
import functools
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Progress = Callable[[dict[str, Any]], None]


class RunError(RuntimeError):
    """A run that cannot start or continue; the message is for the user."""


@dataclass
class RunOutcome:
    run_dir: Path
    plan: Plan
    files: dict[str, Path] = field(default_factory=dict)
    cancelled: bool = False
    worker_failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what went wrong and was recovered
    results_seconds: float = 0.0  # scoring and writing the result files, after the workers


def selected_specs(config: RunConfig, registry: AsrRegistry
                   ) -> tuple[list[AsrModelSpec], dict[str, list[AsrModelSpec]] | None]:
    """The models of the run: named batches keep their grouping; ``--models`` adds more."""
    named = {name: registry.batch(name) for name in config.batches} or None
    extra = [registry.get(key) for key in config.models]
    if named and extra:
        named["custom"] = extra
    if not named and not extra:
        raise RunError("choose models (--models) or named batches (--batches)")
    return extra, named


def plan_run(config: RunConfig, registry: AsrRegistry | None = None,
             audio_seconds: float = 0.0, languages: dict[str | None, int] | None = None,
             clip_seconds: float | None = None, ask_cluster: bool = False,
             durations: DurationReport | None = None) -> Plan:
    """The plan of ``config``; ``languages`` (sample counts by language, see
    :func:`language_counts`) lets it warn about models that do not speak some.
    ``ask_cluster``: for a cluster run, budget with the cluster's memory (joining it; the
    run's own plan does, a preview keeps this machine's figures). ``durations``: where the
    clip durations came from (:func:`core.durations.fill_durations`), for the plan to say
    and to name the files left out of its time estimate."""
    registry = registry or config.registry()
    specs, named = selected_specs(config, registry)
    budget, where = config.budget_gb, None
    if ask_cluster and config.cluster and budget is None:  # the workers run there
        memory, where = cluster.plan_memory_gb(config.cluster, config.device)
        budget = memory * BUDGET_SHARE if memory else None
    store = MeasurementStore()
    try:
        plan = make_plan(specs, read_machine(), device=config.device,
                         budget_gb=budget, named=named, audio_seconds=audio_seconds,
                         languages=languages, all_languages=config.all_languages,
                         dtype=config.dtype, measured=store, clip_seconds=clip_seconds)
        plan.conditions = list(config.conditions)
        if where:
            plan.budget_from = f"the cluster: {where}" if budget else f"this machine ({where})"
        if durations is not None:
            plan.durations = durations.describe()
            plan.warnings += durations.warnings()
        return plan
    finally:
        store.close()


def total_seconds(samples: list[Sample]) -> float:
    """The audio the samples hold, in seconds, counting the clips whose length is known
    (see :func:`core.durations.fill_durations` for the others)."""
    return sum(s.duration or 0.0 for s in samples)


def longest_clip(samples: list[Sample]) -> float | None:
    """The dataset's longest clip in seconds (what a batch's memory peaks on); None when
    a duration is unknown."""
    durations = [s.duration for s in samples]
    return max(durations) if durations and None not in durations else None  # type: ignore[type-var]


def language_counts(samples: list[Sample], override: str | None = None
                    ) -> dict[str | None, int]:
    """Samples per language (the run's ``--language`` override, else each sample's own)."""
    counts: dict[str | None, int] = {}
    for sample in samples:
        language = language_key(override or sample.language)
        counts[language] = counts.get(language, 0) + 1
    return counts


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "faster-whisper", "ctranslate2", "jiwer", "sacrebleu"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def is_running(run_dir: Path) -> bool:
    """Whether a live runner holds this run (a lock left by a killed runner does not count)."""
    return RunDir(run_dir).is_running()


def active_run(out_dir: Path | None = None) -> Path | None:
    """The run currently going in ``out_dir``, if any (for 'one run at a time')."""
    return next((run.path for run in run_dirs(out_dir) if run.is_running()), None)


def plan_samples(config: RunConfig, registry: AsrRegistry | None, samples: list[Sample],
                 ask_cluster: bool = False) -> Plan:
    """The plan of ``config`` over ``samples``, whose missing durations are first read
    from their audio headers: a manifest without them would otherwise plan ~0 s."""
    durations = fill_durations(samples)
    items = config.work_items(samples)  # with conditions: models × conditions × audio
    return plan_run(config, registry, total_seconds(items),
                    language_counts(items, config.decode.language), longest_clip(items),
                    ask_cluster=ask_cluster, durations=durations)


def prepare(config: RunConfig, registry: AsrRegistry | None = None,
            ask_cluster: bool = True) -> Path:
    """Plan a new run and write its folder (config, plan, manifest); run nothing yet.

    ``ask_cluster=False`` (the UI's Start): a cluster run's plan is left to its runner
    process, which joins the cluster (:func:`_cluster_plan`), never the page's server."""
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
    run.write_config(config)
    run.write_plan(plan)
    run.write_manifest({
        "run_id": config.run_id, "dataset": config.dataset, "samples": len(items),
        "sample_ids": [s.id for s in items], "audio_seconds": total_seconds(items),
        "machine": read_machine().to_dict(), "versions": versions(),
        "config": config.to_dict(), "plan": plan.to_dict(), "created": time.time()})
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
    import threading
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
    try:
        plan, manifest = run.read_plan(), run.read_manifest()
    except (OSError, ValueError, KeyError) as exc:
        raise RunError(f"{run.path} is not an ERT run folder ({exc})") from exc
    return write_results(run, plan, manifest, manifest["samples"], strip_accents)


def _execute(run_dir: Path, progress: Progress | None) -> RunOutcome:
    run = RunDir(run_dir)
    holder = run.acquire()
    if holder is not None:
        raise RunError(f"run {run.name} is already going (pid {holder})")
    try:
        plan, manifest = run.read_plan(), run.read_manifest()
        config = run.read_config()
        plan = _cluster_plan(run, config, plan)
        outcome = RunOutcome(run_dir=run.path, plan=plan)
        resources = cluster.connect(config.cluster) if config.cluster else None
        run.records(repair=True)  # a crash's torn line cut while no worker writes
        # GPU workers leave the CPU idle: score their samples as they come (not CPU workers'
        # cores).
        ahead = ScoreAhead(run.records()) if config.device == "cuda" else None

        def waiting() -> None:
            """While workers run: the caller's progress, and scoring ahead."""
            if progress:
                progress(run.read_status())
            if ahead:
                ahead.step()

        upcoming: Workers | None = None  # the next batch's, started ahead and held
        try:
            for index, batch in enumerate(plan.batches):
                if run.cancel_requested():
                    outcome.cancelled = True
                    break
                if resources is not None:
                    count = cluster.shard_count(resources, config.device, len(config.devices))
                    placement = cluster.Placement(
                        num_gpus=1.0 if config.device == "cuda" else 0.0,
                        memory_bytes=int(batch.need_gb * 2**30))
                    failures, notes = cluster.run_batch_on_cluster(
                        run.path, batch.name, count, config.device, placement, waiting)
                else:
                    following = plan.batches[index + 1:index + 2]
                    start_next = (functools.partial(_start_batch, run, config, plan,
                                                    following[0], held=True)
                                  if following and starts_ahead(config) else None)
                    workers = upcoming or _start_batch(run, config, plan, batch)
                    upcoming = None
                    failures, notes, upcoming = _run_batch(run, workers, waiting, start_next)
                    notes = workers.notes + notes
                outcome.worker_failures += failures
                outcome.notes += notes
        finally:
            if upcoming is not None:
                upcoming.release()  # a cancel, or an error: they end without running
        run.drop_claims()
        outcome.cancelled = outcome.cancelled or run.cancel_requested()
        began = time.perf_counter()
        outcome.files = write_results(run, plan, manifest, manifest["samples"])
        outcome.results_seconds = time.perf_counter() - began
        return outcome
    finally:
        run.release()


def _cluster_plan(run: RunDir, config: RunConfig, plan: Plan) -> Plan:
    """A cluster run planned without the cluster (launched from the page), and not begun:
    planned again here with the cluster's memory, and saved."""
    if not config.cluster or config.budget_gb is not None or plan.budget_from or \
            run.records().sample_rows():
        return plan
    samples = load_dataset_spec(config.dataset, config.samples, config.seed)
    fresh = plan_samples(config, None, samples, ask_cluster=True)
    if fresh.batches:
        run.write_plan(fresh)
        return fresh
    return plan


def _replicated(config: RunConfig, plan: Plan, batch: PlannedBatch
                ) -> tuple[list[str], list[str]]:
    """The batch's devices with the replicas per GPU :mod:`core.evaluation.replicas` chose
    (GPU runs only), and a note saying why when it is more than one."""
    if config.device != "cuda" or config.replicas == 1:
        return config.devices, []
    registry = config.registry()
    store = MeasurementStore()
    try:
        specs = [registry.get(m) for m in batch.models]
        loaded = [(spec, load_dtype(spec, "cuda", planned_dtype(plan, spec.key, config.dtype)))
                  for spec in specs]  # the dtype measurements are filed under
        choice = replicas.choose(loaded, batch.need_gb, plan.budget_gb, store,
                                 asked=config.replicas)
    finally:
        store.close()
    if choice.count == 1:
        return config.devices, []
    return replicas.expand(config.devices or ["cuda:0"], choice.count), [
        f"{batch.name}: {choice.reason}"]


def starts_ahead(config: RunConfig) -> bool:
    """Whether the next batch's workers start (and import what their models need) while a
    batch runs: on GPUs, where the host's memory is not what the plan budgets and the
    workers leave its CPU idle. On CPUs they would take memory and cores from the batch
    that runs."""
    return config.device == "cuda"


@dataclass
class Workers:
    """A batch's worker processes, started; ``held`` ones wait for :meth:`go`."""

    run: RunDir
    batch: str
    parts: list[Shard | None]
    claims: Path | None
    procs: list[subprocess.Popen[bytes]]
    logs: list[Any]
    notes: list[str] = field(default_factory=list)  # why the devices are what they are

    def go(self) -> None:
        """Let held workers start their batch (no effect on the others)."""
        self._tell(b"go\n")

    def release(self) -> None:
        """End held workers without running anything, and wait for them. They have not
        touched the run (nor set their SIGTERM handler): ending them mid-import is safe."""
        self._tell(b"")
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait()
        self.close_logs()

    def _tell(self, message: bytes) -> None:
        for proc in self.procs:
            if proc.stdin is not None and not proc.stdin.closed:
                with contextlib.suppress(OSError):  # one that already ended
                    proc.stdin.write(message)
                    proc.stdin.close()

    def close_logs(self) -> None:
        for log in self.logs:
            log.close()


def _start_batch(run: RunDir, config: RunConfig, plan: Plan, batch: PlannedBatch,
                 held: bool = False) -> Workers:
    """Start the batch's workers: one, or one per device sharing its samples as they go
    (:mod:`core.evaluation.claims`), with the replicas :func:`_replicated` chose."""
    devices, notes = _replicated(config, plan, batch)
    if len(devices) <= 1:
        parts: list[Shard | None] = [Shard(0, 1, devices[0]) if devices else None]
        claims = None
    else:
        parts, claims = list(shards(devices)), run.new_claims(batch.name)
    workers = _start_workers(run, batch.name, parts, claims, held)
    workers.notes = notes
    return workers


def _run_batch(run: RunDir, workers: Workers, waiting: Callable[[], None],
               start_next: Callable[[], Workers] | None = None
               ) -> tuple[list[str], list[str], Workers | None]:
    """Run a batch's started workers to the end; once they have loaded, ``start_next``
    starts the next batch's, held (returned, to be let go or released; None if it was not
    called). Returns the failures left and notes on what was recovered (:func:`_settle`)."""
    workers.go()
    upcoming: Workers | None = None

    def waiting_then_next() -> None:
        """Start the next batch's workers once this batch's have loaded: their imports
        would otherwise compete with this batch's loads."""
        nonlocal upcoming
        waiting()
        if start_next is not None and upcoming is None and _loaded(workers):
            upcoming = start_next()

    try:
        codes = _wait_workers(workers, waiting_then_next)
    except BaseException:
        if upcoming is not None:
            upcoming.release()
        raise
    failures, notes = _settle(run, workers, codes, waiting)
    return failures, notes, upcoming


def _settle(run: RunDir, workers: Workers, codes: list[int], waiting: Callable[[], None]
            ) -> tuple[list[str], list[str]]:
    """The failures a batch's ended workers leave, and notes on what was recovered. A
    data-parallel worker that dies (killed, out of memory), or cannot load a model the
    others ran, leaves what it had claimed unfinished: one more worker then takes every
    sample of the batch still missing, on a device whose worker ended well, so nothing is
    lost and, records being first-wins, nothing doubles."""
    batch = workers.batch
    if len(workers.parts) == 1:
        return ([] if codes[0] == 0 else [_failure(run, batch, None, codes[0])]), []
    parts = [part for part in workers.parts if part is not None]  # all, when several
    failed = [(part, code) for part, code in zip(parts, codes, strict=True) if code != 0]
    if run.cancel_requested():
        return [_failure(run, batch, part.index, code) for part, code in failed], []
    unfinished = [] if failed else run.unfinished(batch)
    if not failed and not unfinished:
        return [], []
    healthy = [part.device for part, code in zip(parts, codes, strict=True) if code == 0]
    retry = Shard(0, 1, (healthy or [part.device for part in parts])[0])
    retry_code = _run_workers(run, batch, [retry], waiting)[0]
    notes = [f"{batch}: worker {part.label} on {part.device} exited with {code}; its samples "
             f"were taken by a retry on {retry.device}" for part, code in failed]
    notes += [f"{batch}: {why}; its samples were taken by a retry on {retry.device}"
              for why in unfinished]
    return ([] if retry_code == 0 else [_failure(run, batch, None, retry_code)]), notes


def _loaded(workers: Workers) -> bool:
    """Whether one of ``workers`` is past loading its first model (transcribing, on a
    later model, or finished); statuses are told apart by process id, so an earlier
    attempt's do not count."""
    status = workers.run.read_status()
    pids = {proc.pid for proc in workers.procs}
    return any(s.get("pid") in pids and (s.get("phase") != "loading"
                                         or s.get("model_index", 0) > 0)
               for s in status.get("shards") or [status])


def _failure(run: RunDir, batch: str, shard: int | None, code: int) -> str:
    log = run.worker_log(batch, shard)
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
    return f"{batch}: worker exited with {code}: {' '.join(tail)}"


def _start_workers(run: RunDir, batch: str, parts: list[Shard | None], claims: Path | None,
                   held: bool = False) -> Workers:
    """Start a worker per part (``None``: the batch's one plain worker); ``claims``: the
    folder where data-parallel parts share the samples; ``held``: they wait for ``go``."""
    procs, logs = [], []
    for part in parts:
        parallel = part is not None and part.count > 1
        cmd = [sys.executable, "-m", "core.evaluation.worker", str(run.path), batch]
        if part is not None and (parallel or part.device != "cpu"):
            cmd += part.as_args()
        if parallel and claims is not None:
            cmd += ["--claims", str(claims)]
        if held:
            cmd += ["--hold"]
        env = child_environment({**os.environ,
                                 **(part.environment() if part is not None else {})})
        log = run.worker_log(batch, part.index if parallel else None).open("ab")
        logs.append(log)
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                      stdin=subprocess.PIPE if held else subprocess.DEVNULL,
                                      cwd=Path(__file__).resolve().parents[2]))
    return Workers(run, batch, parts, claims, procs, logs)


def _wait_workers(workers: Workers, waiting: Callable[[], None]) -> list[int]:
    """Wait for all, calling ``waiting`` meanwhile and once at the end."""
    procs = workers.procs
    try:
        while alive := [proc for proc in procs if proc.poll() is None]:
            waiting()
            # Waiting on one of them (not sleeping) sees the last one end the moment it does.
            with contextlib.suppress(subprocess.TimeoutExpired):
                alive[0].wait(timeout=0.5)
    except KeyboardInterrupt:
        for proc in procs:
            proc.terminate()  # the worker turns SIGTERM into a clean cancel
        for proc in procs:
            proc.wait(timeout=60)
        raise
    finally:
        workers.close_logs()
    waiting()
    return [proc.returncode for proc in procs]


def _run_workers(run: RunDir, batch: str, parts: list[Shard | None],
                 waiting: Callable[[], None], claims: Path | None = None) -> list[int]:
    """Start a worker per part and wait for all (see :func:`_start_workers`)."""
    return _wait_workers(_start_workers(run, batch, parts, claims), waiting)


def progress_of(run_dir: Path) -> dict[str, Any]:
    """Overall progress for the UI: samples done per model against the plan, each model's
    outcome (its failure reason) and the batch size and samples/s its recorded samples
    settled at (:func:`core.evaluation.speed.final_batch_size`, ``samples_per_second``)."""
    run = RunDir(run_dir)
    try:
        plan, manifest = run.read_plan(), run.read_manifest()
    except (OSError, ValueError, KeyError):
        return {}
    records = run.records()
    rows = records.sample_rows()
    statuses = records.last_model_status()
    per_model = {}
    for batch in plan.batches:
        for model in batch.models:
            mine = [r for r in rows if r["model"] == model]
            state = statuses.get(model, {}).get("status")
            per_model[model] = {"done": manifest["samples"] if state == "failed" else len(mine),
                                "total": manifest["samples"], "recorded": len(mine),
                                "failures": sum(r["error"] is not None for r in mine),
                                "status": state,
                                "error": statuses.get(model, {}).get("error"),
                                "batch": batch.name,
                                "batch_size": speed.final_batch_size(mine),
                                "samples_per_s": speed.samples_per_second(mine)}
    total = sum(m["total"] for m in per_model.values())
    done = sum(min(m["done"], m["total"]) for m in per_model.values())
    return {"models": per_model, "done": done, "total": total, "status": run.read_status(),
            "running": run.is_running(), "cancel_requested": run.cancel_requested()}


def failure_reason(error: str | None) -> str | None:
    """A recorded error as the user reads it: a :class:`ModelUnavailableError`'s message is
    written for them, so its class name is dropped."""
    prefix = "ModelUnavailableError: "
    return error[len(prefix):] if error and error.startswith(prefix) else error


def progress_rows(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The Evaluation page's progress table, a row per model: what became of it first (a
    failed model's reason in its status), then how far it got; batch size and samples/s
    live for the model running, and as they settled for the others."""
    status = info["status"]
    rows = []
    for model, m in info["models"].items():
        current = info["running"] and status.get("model") == model
        state = m["status"] or ("running" if current else "waiting")
        if state == "failed" and m.get("error"):
            state = f"failed: {failure_reason(m['error'])}"
        live = current and status.get("batch_size") is not None
        rows.append({"model": model, "status": state,
                     "progress": m["done"] / max(m["total"], 1),
                     "samples": f"{m.get('recorded', m['done'])} of {m['total']}",
                     "failed": m["failures"], "batch": m["batch"],
                     "batch size": status.get("batch_size") if live else m.get("batch_size"),
                     "samples/s": status.get("samples_per_s") if live
                     else m.get("samples_per_s")})
    return rows


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
