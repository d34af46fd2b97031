"""CPU thread caps, applied before torch/numpy/transformers are imported.

The seed notes traced the workbench's 70 % CPU at rest to every native
library (OpenMP, MKL, OpenBLAS, numexpr, HF tokenizers) spawning one thread
per core. The caps only take effect if they are in the environment before
those libraries load, which is why ``core/__init__.py`` calls
:func:`configure` on import and every entry point imports ``core`` first.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
MAX_DEFAULT_THREADS = 4


@dataclass(frozen=True)
class ThreadSettings:
    """The caps in force, as shown in the UI and recorded in run manifests."""

    threads: int
    interop_threads: int
    env: dict[str, str]
    torch_threads: int | None = None
    torch_interop_threads: int | None = None


def default_threads(cores: int | None = None) -> int:
    """The number of threads used when ``ERT_THREADS`` is unset: all cores, at most 4."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_THREADS))


def requested_threads() -> int:
    """Read ``ERT_THREADS``; a bad value falls back to the default instead of crashing."""
    raw = os.environ.get("ERT_THREADS", "").strip()
    if raw:
        try:
            value = int(raw)
            if value > 0:
                return value
        except ValueError:
            pass
        print(f"ERT_THREADS={raw!r} is not a positive integer; using the default", file=sys.stderr)
    return default_threads()


def configure(threads: int | None = None) -> ThreadSettings:
    """Set the thread variables and, if torch is already loaded, torch's pools.

    Torch reads ``OMP_NUM_THREADS`` when it initialises, so setting the
    environment first is enough for modules that import torch later; see
    :func:`apply_torch` for the explicit calls.
    """
    n = threads or requested_threads()
    interop = max(1, min(2, n))
    env = {name: str(n) for name in THREAD_ENV_VARS}
    env["TOKENIZERS_PARALLELISM"] = "false"
    os.environ.update(env)
    os.environ["ERT_THREADS"] = str(n)
    settings = ThreadSettings(threads=n, interop_threads=interop, env=env)
    if "torch" in sys.modules:
        settings = apply_torch(settings)
    return settings


def apply_torch(settings: ThreadSettings | None = None) -> ThreadSettings:
    """Import torch and cap its intra-op and inter-op pools.

    ``set_num_interop_threads`` may only be called once, before any
    inter-op work, so a second call is tolerated silently.
    """
    settings = settings or current()
    import torch

    torch.set_num_threads(settings.threads)
    # Only settable once per process, before inter-op work: a second call is a no-op.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(settings.interop_threads)
    return ThreadSettings(
        threads=settings.threads,
        interop_threads=settings.interop_threads,
        env=settings.env,
        torch_threads=torch.get_num_threads(),
        torch_interop_threads=torch.get_num_interop_threads(),
    )


def current() -> ThreadSettings:
    """The caps as they stand in this process (for display)."""
    n = int(os.environ.get("ERT_THREADS") or default_threads())
    env = {name: os.environ.get(name, "") for name in (*THREAD_ENV_VARS, "TOKENIZERS_PARALLELISM")}
    torch_threads = torch_interop = None
    if "torch" in sys.modules:
        import torch

        torch_threads = torch.get_num_threads()
        torch_interop = torch.get_num_interop_threads()
    return ThreadSettings(n, max(1, min(2, n)), env, torch_threads, torch_interop)
