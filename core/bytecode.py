"""Compiled bytecode for the processes ERT starts, where the environment keeps none.

Container images often set ``PYTHONDONTWRITEBYTECODE=1`` and ship their packages without
``__pycache__`` (the GPU image ERT is measured on does both: torch has none), so every new
process compiles each module it imports from source. A GPU worker's imports (torch,
transformers, Whisper) took 13–15 s there, 5.8 s with bytecode (BENCHMARKS.md), and ERT starts
a process per run, per batch and per GPU. So the processes it starts keep their bytecode in
a cache of ERT's own (``PYTHONPYCACHEPREFIX``, under ``$ERT_CACHE_DIR``): the first writes it,
the next ones read it, and the environment's own folders are not touched. A prefix the user
set is kept; ``ERT_BYTECODE_CACHE=0`` leaves the environment as it is.
"""

from __future__ import annotations

from core.paths import cache_dir

import os
from collections.abc import Mapping

FOLDER = "pycache"  # under the cache: one tree per source path, per Python version
OPT_OUT = "ERT_BYTECODE_CACHE"


def overrides(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables to set in a Python process started from ``base`` (default: this
    process's environment) so that it keeps bytecode: none where it already does, where
    the user chose where, or where ERT is told not to (``ERT_BYTECODE_CACHE=0``). An empty
    ``PYTHONDONTWRITEBYTECODE`` is Python's "unset"."""
    env = os.environ if base is None else base
    if (not env.get("PYTHONDONTWRITEBYTECODE") or env.get("PYTHONPYCACHEPREFIX")
            or env.get(OPT_OUT) == "0"):
        return {}
    try:
        folder = cache_dir(FOLDER)
    except OSError:  # a cache that cannot be written: compile as before, start all the same
        return {}
    return {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(folder)}


def child_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a Python process ERT starts: ``base`` (default: this process's)
    with :func:`overrides`."""
    env = dict(os.environ if base is None else base)
    return {**env, **overrides(env)}
