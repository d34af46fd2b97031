"""Spreading pure-Python work over the cores, where that is safe.

Scoring a large run (normalising, aligning and counting n-grams for every sample) is pure
Python: one core does it, however many the machine has, while the workers it waited for
used them all. Forked processes share the parent's imports, so they start in milliseconds.
A fork taken while another Python thread holds a lock (stdout's, logging's, a library's)
can deadlock the child, so work is only spread when this process runs a single Python
thread (the runner at the end of a run, the CLI), never from a server with threads (the
app, the API): there it runs here, serially. Idle native pools (torch's) do not count: the
child never calls into them, as PyTorch's own DataLoader workers, forked the same way. Nor
does tqdm's monitor, which any progress bar starts and which is stopped before forking.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def single_threaded() -> bool:
    """Whether this process runs one Python thread (and can fork: Linux)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def stop_tqdm_monitor() -> None:
    """Stop tqdm's monitor thread if a progress bar started it (a daemon that wakes every
    10 s to adjust bars: the one extra thread a CLI or a benchmark driver commonly has, which
    would keep its scoring on one core); tqdm starts it again with its next bar."""
    module = sys.modules.get("tqdm")
    monitor = getattr(getattr(module, "tqdm", None), "monitor", None)
    if monitor is not None and monitor.is_alive():
        monitor.exit()


def usable_cores() -> int:
    """The cores this process may use: those it is pinned to, within ERT's thread cap
    (``ERT_THREADS``, :mod:`core.threads`), which keeps the rest of the machine usable."""
    from core.threads import requested_threads

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, requested_threads()))


def chunks(items: Sequence[T], parts: int) -> list[Sequence[T]]:
    """``items`` cut into at most ``parts`` contiguous runs, in order."""
    size = -(-len(items) // max(1, parts))
    return [items[i:i + size] for i in range(0, len(items), size)] if items else []


def fork_map(fn: Callable[[Sequence[T]], R], items: Sequence[T], min_per_process: int
             ) -> list[R]:
    """``[fn(part) for part in chunks(items)]``, over forked processes when there are at least
    two ``min_per_process`` runs' worth of items, two usable cores and one thread here; otherwise
    ``[fn(items)]`` in this process. ``fn`` must be a module-level function (it is pickled by
    name) and its results picklable."""
    processes = min(usable_cores(), len(items) // max(1, min_per_process))
    if processes >= 2:
        stop_tqdm_monitor()
    if processes < 2 or not single_threaded():
        return [fn(items)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(fn, chunks(items, processes)))
