"""A batch's local worker processes: started (optionally held until their turn), watched
to the end, their logs, and one retry for what a data-parallel worker left unfinished.

Each batch runs in fresh ``python -m core.evaluation.worker`` processes, so the memory
of its models goes back to the system when it ends, and a worker that dies costs only
its unfinished step: every finished sample is already on disk.
"""

from __future__ import annotations

from core.bytecode import child_environment
from core.devices import is_cuda
from core.evaluation.run_dir import RunDir
from core.evaluation.shards import Shard

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]  # workers run from here: they import ``core``


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


def start_workers(run: RunDir, batch: str, parts: list[Shard | None], claims: Path | None,
                  held: bool = False) -> Workers:
    """Start a worker per part (``None``: the batch's one plain worker); ``claims``: the
    folder where data-parallel parts share the samples; ``held``: they wait for ``go``."""
    procs, logs = [], []
    for part in parts:
        parallel = part is not None and part.count > 1
        cmd = [sys.executable, "-m", "core.evaluation.worker", str(run.path), batch]
        if part is not None and (parallel or is_cuda(part.device)):
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
                                      cwd=REPO))
    return Workers(run, batch, parts, claims, procs, logs)


def run_to_end(run: RunDir, workers: Workers, waiting: Callable[[], None],
               start_next: Callable[[], Workers] | None = None
               ) -> tuple[list[str], list[str], Workers | None]:
    """Run a batch's started workers to the end; once they have loaded, ``start_next``
    starts the next batch's, held (returned, to be let go or released; None if it was not
    called). Returns the failures left and notes on what was recovered (:func:`settle`)."""
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
    failures, notes = settle(run, workers, codes, waiting)
    return failures, notes, upcoming


def settle(run: RunDir, workers: Workers, codes: list[int], waiting: Callable[[], None]
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
    """A failed worker as the run reports it: its exit code and its log's last line."""
    log = run.worker_log(batch, shard)
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
    return f"{batch}: worker exited with {code}: {' '.join(tail)}"


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
    """Start a worker per part and wait for all (see :func:`start_workers`)."""
    return _wait_workers(start_workers(run, batch, parts, claims), waiting)
