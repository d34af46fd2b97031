"""A run's settings, saved in its folder (:class:`RunDir`) so ``--resume`` needs nothing else."""

from __future__ import annotations

from core import paths
from core.asr.base import DecodeOptions
from core.asr.registry import AsrRegistry, load_asr_registry
from core.evaluation.memory_guard import GuardConfig

import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.datasets import Sample


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
    # Weights' dtype: "auto" (core.asr.dtype: bf16 on a CPU that has it), "float32" or
    # "bfloat16"; wins over a registry entry's own.
    dtype: str = "auto"
    budget_gb: float | None = None  # None: a share of the memory available at plan time
    out_dir: str = field(default_factory=lambda: str(paths.runs_dir()))
    run_id: str = field(default_factory=new_run_id)
    registry_path: str | None = None
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    tune_batch_size: bool = True
    # None: 32 on the CPU, 256 on a GPU (large-v3 on an H100 peaked at batch 256).
    max_batch_size: int | None = None
    guard: GuardConfig = field(default_factory=GuardConfig)
    # The transcription cache: read it (``--no-cache``: neither read nor trust it, the models
    # transcribe every sample) and write to it (``--no-cache-write``: leave it as it was).
    use_cache: bool = True
    write_cache: bool = True
    # A repeated run of a model on the same dataset follows the batch sizes the last one
    # used (core.evaluation.tuning: identical transcripts); True tunes afresh (``--retune``).
    retune: bool = False
    # Re-decode up to this many batched clips per model at batch size 1 and report how many
    # differ (``--check-batch-invariance``): the run's own numerical noise floor. 0: off.
    check_batch_invariance: int = 0
    # Manifest columns the results are sliced by (``--by accent,gender``), beside clip
    # length, language and dataset, which always are (core.slices).
    slice_by: list[str] = field(default_factory=list)
    # False: a model is run and scored only on samples in its registry languages; the
    # others are recorded as skipped (wrong language). True: on every sample.
    all_languages: bool = False
    baseline: str | None = None  # model whose paired WER change the others report
    # Data-parallel workers, one per device ("cuda:0", "cuda:1"; "cpu" may repeat): they
    # share each model's samples as they go (core.evaluation.claims). Empty: one worker
    # on ``device``.
    devices: list[str] = field(default_factory=list)
    # Run the workers as Ray tasks: "local" (Ray started here), "auto" (the cluster this
    # machine belongs to) or "host:port"; the run folder and dataset on a shared path.
    cluster: str | None = None
    # Workers per GPU: None chooses from measured throughput (core.evaluation.replicas);
    # 1 or 2 fixes it (a 2 that does not fit the GPU budget is refused by the choice).
    replicas: int | None = None
    # Robustness conditions every clip is also heard under (core.conditions: "clean",
    # "noise:snr=10", "telephone", …), stored as their labels once the run is prepared;
    # empty: the clips as they are, as before. ``conditions_path``: their registry (default
    # configs/conditions.toml).
    conditions: list[str] = field(default_factory=list)
    conditions_path: str | None = None

    def dataset_identity(self) -> dict[str, Any]:
        """What decides which clip a model sees at which step: the dataset, its sampling and
        the decoding options (a remembered batch schedule is kept per identity)."""
        identity = {"dataset": self.dataset, "samples": self.samples, "seed": self.seed,
                    "decode": asdict(self.decode), "all_languages": self.all_languages,
                    "max_batch_size": self.max_batch_size}
        if self.conditions:  # a run without conditions keeps the identity it always had
            identity["conditions"] = list(self.conditions)
        return identity

    def resolve_conditions(self) -> None:
        """Check the conditions (before anything runs) and store them as their labels, so
        that ``noise`` becomes ``noise:snr=20``, ``noise:snr=10``, … and a resumed run hears
        what it began with. Raises :class:`core.conditions.ConditionError` with the
        user's message."""
        if not self.conditions:
            return
        from core.conditions import load_conditions, parse_conditions

        if self.conditions_path:
            self.conditions_path = str(Path(self.conditions_path).expanduser().resolve())
        registry = load_conditions(self.conditions_path)
        self.conditions = [c.label for c in parse_conditions(self.conditions, registry)]

    def work_items(self, samples: list[Sample]) -> list[Sample]:
        """What the run's models transcribe: ``samples``, or with conditions each of them
        under each condition (:func:`core.conditions.expand`: ids ``en_001@noise:snr=10``).
        The planner, the manifest and every worker take them from here. Raises
        :class:`core.conditions.ConditionError` for a condition that cannot run."""
        if not self.conditions:
            return samples
        from core.conditions import expand, load_conditions, parse_conditions

        return expand(samples, parse_conditions(self.conditions,
                                                load_conditions(self.conditions_path)))

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.run_id

    def registry(self) -> AsrRegistry:
        """The model registry the run names its models from (``registry_path``, else the
        default one)."""
        return load_asr_registry(Path(self.registry_path) if self.registry_path else None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        data["decode"] = DecodeOptions(**data.get("decode", {}))
        data["guard"] = GuardConfig(**data.get("guard", {}))
        return cls(**data)
