"""One batch of models in one process: ``python -m core.evaluation.worker RUN_DIR BATCH``.

Inside, one model at a time: load, transcribe the pending samples in tuned
batches, record each sample at once, free. The process exits when the batch
is done, which hands every byte its models used back to the system.

Each model's turn is :class:`core.evaluation.model_turn.ModelEvaluation`; this module is
the process around the turns: its arguments, the held start, and the batch's loop over
models with what they share (memory guard, transcript cache, measurements, status).
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps before torch)
from core.asr.factory import create_backend
from core.datasets import Sample, load_dataset_spec
from core.evaluation.cache import TranscriptCache
from core.evaluation.claims import Claims
from core.evaluation.measurements import MeasurementStore
from core.evaluation.memory_guard import MemoryGuard
from core.evaluation.model_turn import ModelEvaluation
from core.evaluation.planner import planned_dtype
from core.evaluation.run_dir import RunDir
from core.evaluation.shards import Shard

import os
import signal
import socket
import sys
from collections.abc import Iterable
from pathlib import Path


def run_batch(run_dir: Path, batch_name: str, shard: Shard | None = None,
              claims: Path | None = None) -> int:
    """Evaluate every model of ``batch_name`` that still has work; 0 when done.

    ``shard``: this worker is one of several data-parallel ones. With ``claims`` (the
    dispatch's folder, :mod:`core.evaluation.claims`) the workers share each model's
    samples as they go; without, this one takes its dealt share (every ``count``-th).
    """
    shard = shard or Shard()
    parallel = shard.count > 1
    run = RunDir(run_dir)
    config = run.read_config()
    plan = run.read_plan()
    batch = plan.batch(batch_name)
    registry = config.registry()
    samples = config.work_items(load_dataset_spec(config.dataset, config.samples, config.seed))
    sharing = parallel and claims is not None
    mine = samples if sharing else shard.take(samples)
    records = run.records(repair=not parallel)  # parallel ones share the logs as they write
    status = run.status_writer(shard.index if parallel else None, batch=batch_name,
                               **({"shard": shard.label, "device": shard.device,
                                   "node": socket.gethostname()} if parallel else {}))
    guard = MemoryGuard(config.guard)
    guard.start()
    # Opened even with --no-cache: it is written, and keeps the batch sizes a run used.
    cache = TranscriptCache()
    measured = MeasurementStore()
    # A model that failed to load is done: its failure is recorded, not retried on resume.
    failed = records.failed_models()
    try:
        for position, key in enumerate(batch.models):
            done = records.done(key)
            pending: Iterable[Sample] = [s for s in mine if s.id not in done]
            if not pending or key in failed:
                continue
            if run.cancel_requested():
                break
            total = len(pending)
            if sharing:
                assert claims is not None
                total = -(-total // shard.count)  # about its part; it may take more
                share = Claims(claims / str(position), shard.index, shard.count)
                pending = (s for chunk in share.chunks(samples) for s in chunk
                           if s.id not in done)
            evaluation = ModelEvaluation(registry.get(key), batch_name, config, records, guard,
                                         status, cache, plan.budget_gb, measured,
                                         planned_dtype(plan, key, config.dtype),
                                         resuming=bool(done))
            evaluation.device = shard.device if parallel else None
            evaluation.replicas = shard.replicas
            if parallel:
                evaluation.placement = {"shard": shard.label, "device": shard.device,
                                        "node": socket.gethostname()}
            record = evaluation.run(
                pending, run, {"model_index": position, "models_total": len(batch.models)},
                total)
            if record is not None:
                records.add_model(record)
    finally:
        guard.stop()
        guard.write_stats(run.memory_stats(batch_name, shard.index if parallel else None))
        if cache is not None:
            cache.close()
        measured.close()
        status.update(phase="finished")
    return 0


def preload(run_dir: Path, batch_name: str) -> None:
    """Import what the batch's backends need, loading nothing (see :func:`hold`)."""
    run = RunDir(run_dir)
    config = run.read_config()
    registry = config.registry()
    for key in run.read_plan().batch(batch_name).models:
        try:
            create_backend(registry.get(key), config.device).preload()
        except Exception:  # noqa: S112  (its turn reports what is wrong with the model)
            continue


def hold(run_dir: Path, batch_name: str) -> bool:
    """A worker started ahead of its turn (``--hold``, :mod:`core.evaluation.runner` starts
    the next batch's while one runs): import what its models need, then wait for the runner
    to write ``go`` on its standard input. Anything else (the runner cancelled the run, or
    died, which closes the pipe) ends it without touching the run."""
    preload(run_dir, batch_name)
    return sys.stdin.readline().strip() == "go"


def main(argv: list[str] | None = None) -> int:
    """``python -m core.evaluation.worker RUN_DIR BATCH [--shard I/N --on DEVICE
    [--claims DIR]] [--hold]``."""
    args = list(argv if argv is not None else sys.argv[1:])
    held = "--hold" in args
    if held:
        args.remove("--hold")
    shard, claims = None, None
    if len(args) == 8 and args[6] == "--claims":
        claims = Path(args[7])
        args = args[:6]
    if len(args) == 6 and args[2] == "--shard" and args[4] == "--on":
        shard = Shard.parse(args[3], args[5])
        args = args[:2]
    if len(args) != 2:
        print("usage: python -m core.evaluation.worker RUN_DIR BATCH [--shard I/N --on DEVICE "
              "[--claims DIR]] [--hold]", file=sys.stderr)
        return 2
    if held and not hold(Path(args[0]), args[1]):
        return 0
    # SIGTERM (Cancel in the UI) ends the current step cleanly, like a cancel file.
    signal.signal(signal.SIGTERM, lambda *_: RunDir(args[0]).request_cancel())
    return run_batch(Path(args[0]), args[1], shard, claims)


if __name__ == "__main__":
    code = main()
    # A process that has loaded torch and transformers spends about a second tearing its
    # modules down (0.9 s here for a tiny Whisper; the runner waits for it, the GPUs idle).
    # Every record, log and store is written and closed by now: end at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
