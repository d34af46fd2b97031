"""What a run folder says about its run: written once when the run is prepared, read by
whatever continues, rescores or shows it.

The manifest records what a result depends on besides the records (the dataset and its
samples, the machine, the library versions, the config and the plan), so that a run
copied elsewhere or read years later still says how it was made.
"""

from __future__ import annotations

from core.datasets import Sample
from core.evaluation.config import RunConfig
from core.evaluation.planner import Plan
from core.evaluation.run_dir import RunDir
from core.evaluation.run_error import RunError
from core.evaluation.run_plan import total_seconds
from core.system import read_machine

import platform
import time
from typing import Any

VERSIONED = ("torch", "transformers", "faster-whisper", "ctranslate2", "jiwer", "sacrebleu")


def versions() -> dict[str, str]:
    """Python's and the versions of the libraries a result depends on ("absent" if not
    installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def manifest(config: RunConfig, plan: Plan, items: list[Sample]) -> dict[str, Any]:
    """The manifest of a run of ``config`` over ``items`` (its work items: the samples under
    every condition), as :func:`write` saves it."""
    return {"run_id": config.run_id, "dataset": config.dataset, "samples": len(items),
            "sample_ids": [s.id for s in items],
            "audio_seconds": total_seconds(items),
            "machine": read_machine().to_dict(), "versions": versions(),
            "config": config.to_dict(), "plan": plan.to_dict(), "created": time.time()}


def write(run: RunDir, config: RunConfig, plan: Plan, items: list[Sample]) -> None:
    """Write a new run's folder: the config its workers read, its plan and its manifest."""
    run.write_config(config)
    run.write_plan(plan)
    run.write_manifest(manifest(config, plan, items))


def read(run: RunDir) -> tuple[Plan, dict[str, Any]]:
    """The run's plan and manifest; :class:`RunError` when the folder is not a run's."""
    try:
        return run.read_plan(), run.read_manifest()
    except (OSError, ValueError, KeyError) as exc:
        raise RunError(f"{run.path} is not an ERT run folder ({exc})") from exc
