"""Live progress of a run, shared through small files in its folder.

The worker rewrites ``status.json`` atomically after every step; the CLI's
progress bars and the UI read it. A ``CANCEL`` file asks every worker to stop
after its current step, which is how the UI's Cancel and SIGTERM work.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
CANCEL_FILE = "CANCEL"


class StatusWriter:
    def __init__(self, run_dir: Path, **fields: Any) -> None:
        self.path = Path(run_dir) / STATUS_FILE
        self.fields: dict[str, Any] = {"pid": os.getpid(), **fields}

    def update(self, **fields: Any) -> None:
        self.fields.update(fields, updated=time.time())
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.fields))
        os.replace(tmp, self.path)


def read_status(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def cancel_requested(run_dir: Path) -> bool:
    return (Path(run_dir) / CANCEL_FILE).exists()


def request_cancel(run_dir: Path) -> None:
    (Path(run_dir) / CANCEL_FILE).touch()


def clear_cancel(run_dir: Path) -> None:
    (Path(run_dir) / CANCEL_FILE).unlink(missing_ok=True)
