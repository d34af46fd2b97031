"""A run's settings, saved in its folder so ``--resume`` needs nothing else."""

from __future__ import annotations

from core.asr.base import DecodeOptions
from core.evaluation.guard import GuardConfig

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONFIG_FILE = "run_config.json"
MANIFEST_FILE = "run_manifest.json"  # dataset, machine, versions, config and plan
DEFAULT_OUT = Path("runs")


def new_run_id() -> str:
    """Sortable and unique: ``20261123-101500-ab12``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass
class RunConfig:
    """Everything that defines an evaluation run."""

    dataset: str
    models: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)  # named batches from the registry
    samples: int | None = None
    seed: int = 0
    device: str = "cpu"
    budget_gb: float | None = None  # None: a share of the memory available at plan time
    out_dir: str = str(DEFAULT_OUT)
    run_id: str = field(default_factory=new_run_id)
    registry_path: str | None = None
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    tune_batch_size: bool = True
    # None: 32 on the CPU, 256 on a GPU (large-v3 on an H100 peaked at batch 256).
    max_batch_size: int | None = None
    guard: GuardConfig = field(default_factory=GuardConfig)
    use_cache: bool = True
    # False: a model is run and scored only on samples in its registry languages; the
    # others are recorded as skipped (wrong language). True: on every sample.
    all_languages: bool = False
    baseline: str | None = None  # model whose paired WER change the others report

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.run_id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        data["decode"] = DecodeOptions(**data.get("decode", {}))
        data["guard"] = GuardConfig(**data.get("guard", {}))
        return cls(**data)

    def save(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / CONFIG_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, run_dir: Path) -> RunConfig:
        path = Path(run_dir) / CONFIG_FILE
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise FileNotFoundError(f"no readable run in {run_dir}: {exc}") from exc
