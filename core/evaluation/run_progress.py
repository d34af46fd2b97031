"""How far a run got, read from its folder alone (plan, manifest, records, live status):
the Evaluation page shows any run with it, running here, in another process or finished."""

from __future__ import annotations

from core.evaluation import run_manifest, speed
from core.evaluation.run_dir import RunDir
from core.evaluation.run_error import RunError

from pathlib import Path
from typing import Any


def progress_of(run_dir: Path) -> dict[str, Any]:
    """Overall progress for the UI: samples done per model against the plan, each model's
    outcome (its failure reason) and the batch size and samples/s its recorded samples
    settled at (:func:`core.evaluation.speed.final_batch_size`, ``samples_per_second``);
    ``{}`` for a folder that is not a run's."""
    run = RunDir(run_dir)
    try:
        plan, manifest = run_manifest.read(run)
    except RunError:
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
