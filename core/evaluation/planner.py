"""Grouping models into batches that fit the memory budget (the seed's ``resource_manager.py``).

Each batch runs in its own worker process, one model at a time, and the
process exit returns everything to the system. A batch is sized so that it
fits the budget even if nothing inside it were freed before the worker ends
(the sum of its models' needs), which is what keeps a small machine out of
swap when an allocator holds on to memory. The strategy of the French
batch-evaluation guide (by free RAM) caps how many models share a batch.
"""

from __future__ import annotations

from core import hub
from core.asr import availability, memory
from core.asr.dtype import bf16_fallback
from core.asr.factory import backend_class
from core.asr.spec import AsrModelSpec
from core.devices import device_kind, is_cpu
from core.evaluation.measurements import MeasurementStore
from core.phrasing import plural
from core.system import BUDGET_SHARE, MachineInfo, available_memory_gb, read_machine

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

HEAVY_SHARE = 1 / 3  # a model needing more than this share of the budget runs alone
LOAD_SECONDS_PER_GB = 4.0  # rough CPU load time for the time estimate


class Strategy(StrEnum):
    AGGRESSIVE = "aggressive"
    MODERATE = "moderate"
    CONSERVATIVE = "conservative"


MAX_MODELS = {Strategy.AGGRESSIVE: 5, Strategy.MODERATE: 3, Strategy.CONSERVATIVE: 2}


def pick_strategy(available_gb: float) -> Strategy:
    """The guide's thresholds: > 15 GB aggressive, 8–15 GB moderate, < 8 GB conservative."""
    if available_gb > 15:
        return Strategy.AGGRESSIVE
    if available_gb >= 8:
        return Strategy.MODERATE
    return Strategy.CONSERVATIVE


@dataclass
class ModelNeed:
    """What one model needs while it runs, what its worker keeps after freeing it, and
    where the figure came from ("measured 2026-11-27 14:02", "estimated", "registry")."""

    model: str
    need_gb: float
    retained_gb: float  # the need itself when unmeasured: as if nothing were freed
    source: str
    dtype: str
    seconds: float = 0.0
    seconds_source: str = "estimated"
    # What keeps it from loading without the hub ("needs a download: 0.15 GB"), None when it
    # is on this machine (core.asr.availability; None too in plans from before issue 27).
    missing: str | None = None

    def label(self) -> str:
        """The figure every picker, plan and reason shows: "0.36 GB (estimated)", with
        "· needs a download: 0.15 GB" when the model is not on this machine."""
        return (f"{format_gb(self.need_gb)} ({self.source})"
                + (f" · {self.missing}" if self.missing else ""))

    def option(self) -> str:
        """The model as a picker and the plan's table name it, with :meth:`label`."""
        return f"{self.model} · {self.label()}"


@dataclass
class PlannedBatch:
    name: str
    models: list[str]
    need_gb: float
    reason: str
    estimated_seconds: float = 0.0
    needs: list[ModelNeed] = field(default_factory=list)


@dataclass
class Refusal:
    model: str
    reason: str


@dataclass
class Plan:
    device: str
    budget_gb: float
    available_gb: float
    strategy: Strategy
    batches: list[PlannedBatch] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Where the budget came from when not this machine's free memory nor --budget-gb: a
    # cluster run's plan says "the cluster: …" (core.evaluation.cluster.plan_memory_gb).
    budget_from: str | None = None
    # Where the clip durations the estimates use came from ("read from audio headers for 80
    # of 80 samples", core.durations.DurationReport); None in plans that did not record it.
    durations: str | None = None
    # The robustness conditions every clip is heard under (labels, core.conditions): the
    # estimates are over clips × conditions. Empty: the clips as they are.
    conditions: list[str] = field(default_factory=list)

    @property
    def estimated_seconds(self) -> float:
        return sum(b.estimated_seconds for b in self.batches)

    @property
    def models(self) -> list[str]:
        return [m for b in self.batches for m in b.models]

    def batch(self, name: str) -> PlannedBatch:
        return next(b for b in self.batches if b.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "strategy": self.strategy.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(device=data["device"], budget_gb=data["budget_gb"],
                   available_gb=data["available_gb"], strategy=Strategy(data["strategy"]),
                   batches=[PlannedBatch(**{**b, "needs": [ModelNeed(**n)
                                                            for n in b.get("needs", [])]})
                            for b in data.get("batches", [])],
                   refused=[Refusal(**r) for r in data.get("refused", [])],
                   warnings=list(data.get("warnings", [])),
                   budget_from=data.get("budget_from"), durations=data.get("durations"),
                   conditions=list(data.get("conditions", [])))

    def describe(self) -> str:
        """The plan as the CLI prints it."""
        lines = [f"device: {self.device} · available {self.available_gb:.1f} GB · budget "
                 f"{self.budget_gb:.1f} GB · strategy {self.strategy.value} "
                 f"(≤ {MAX_MODELS[self.strategy]} models a batch)"
                 + (f" · budget from {self.budget_from}" if self.budget_from else "")]
        for batch in self.batches:
            lines.append(f"  {batch.name}: {', '.join(batch.models)} — needs "
                         f"{format_gb(batch.need_gb)}, "
                         f"~{format_duration(batch.estimated_seconds)} ({batch.reason})")
            for need in batch.needs:
                kept = (f", keeps {format_gb(need.retained_gb)} after" if need.retained_gb <
                        need.need_gb else "")
                lines.append(f"      {need.model}: {format_gb(need.need_gb)} ({need.source}, "
                             f"{need.dtype}{kept}), ~{format_duration(need.seconds)} "
                             f"({need.seconds_source})"
                             + (f" · {need.missing}" if need.missing else ""))
        if self.conditions:
            lines.append(f"  {self.conditions_line()}")
        for refusal in self.refused:
            lines.append(f"  refused {refusal.model}: {refusal.reason}")
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        lines.append(f"estimated time: {format_duration(self.estimated_seconds)}"
                     + (f" (clip durations {self.durations})" if self.durations else ""))
        return "\n".join(lines)


    def conditions_line(self) -> str:
        """What the conditions multiply: every clip × N conditions, for every model."""
        count = len(self.conditions)
        return (f"every clip × {count} condition{'s' if count != 1 else ''} "
                f"({', '.join(self.conditions)}), for every model: the time estimate "
                "includes them")


def format_gb(value: float) -> str:
    """A model's or a batch's memory figure, the same way everywhere: "0.36 GB"."""
    return f"{value:.2f} GB"


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def plan_budget(device: str, budget_gb: float | None = None,
                machine: MachineInfo | None = None) -> float:
    """The budget a plan uses: ``budget_gb`` when given (0 or None: not given), else
    :data:`BUDGET_SHARE` of what is free on ``device`` now."""
    if budget_gb:
        return budget_gb
    return available_memory_gb(machine or read_machine(), device) * BUDGET_SHARE


def estimate_model_seconds(spec: AsrModelSpec, device: str, audio_seconds: float,
                           dtype: str = "auto", measured: MeasurementStore | None = None
                           ) -> tuple[float, str]:
    """Load + transcription time, and where it came from: this machine's measured speed
    and load time for the model, device and dtype when a run recorded them, else the
    backend's declared speed prior scaled by model size (rough)."""
    backend = backend_class(spec.backend)
    prior = backend.rtfx_prior[device_kind(device)]
    if backend.remote:  # a served model: its size says nothing about its speed here
        return audio_seconds / prior, "estimated"
    estimate = memory.estimate(spec, device, dtype=dtype)
    known = measured.speed(spec, device, estimate.dtype) if measured else None
    if known is not None and known.rtfx:
        return (known.load_seconds or 0.0) + audio_seconds / known.rtfx, f"measured {known.when}"
    params_m = max(estimate.params / 1e6, 1.0)
    rtfx = prior * 100.0 / params_m
    load = LOAD_SECONDS_PER_GB * estimate.weights_gb if is_cpu(device) else 2.0
    return load + audio_seconds / max(rtfx, 0.05), "estimated"


def model_need(spec: AsrModelSpec, device: str, dtype: str = "auto",
               measured: MeasurementStore | None = None,
               clip_seconds: float | None = None, budget_gb: float | None = None) -> ModelNeed:
    """A model's need: the registry's override, else what runs on this machine measured
    (the highest peak on clips at least this long), else the derived estimate. A model
    over ``budget_gb`` in its automatic dtype is planned in bf16 when that fits and the
    CPU computes bf16 natively (slower than fp32 there, but it runs)."""
    need = _model_need(spec, device, dtype, measured, clip_seconds)
    if budget_gb is not None and need.need_gb > budget_gb and bf16_fallback(spec, device, dtype):
        smaller = _model_need(spec, device, "bfloat16", measured, clip_seconds)
        if smaller.need_gb <= budget_gb:
            smaller.source += (f"; bfloat16 because its {need.dtype} need, "
                               f"{format_gb(need.need_gb)}, is over the budget")
            need = smaller
    need.missing = availability.missing(spec, device)
    return need


def model_needs(specs: list[AsrModelSpec], device: str, dtype: str = "auto",
                clip_seconds: float | None = None, budget_gb: float | None = None
                ) -> dict[str, ModelNeed]:
    """Each model's :func:`model_need` as a plan with these inputs would figure it, with
    this machine's measurements: what a model picker shows beside each model."""
    store = MeasurementStore()
    try:
        return {spec.key: model_need(spec, device, dtype, store, clip_seconds, budget_gb)
                for spec in specs}
    finally:
        store.close()


def model_option(spec: AsrModelSpec, device: str) -> str:
    """A picker's option for one model with no dataset at hand (clip lengths unknown):
    "whisper:tiny · 0.50 GB (estimated) · needs a download: 0.15 GB"."""
    return model_needs([spec], device)[spec.key].option()


def _model_need(spec: AsrModelSpec, device: str, dtype: str,
                measured: MeasurementStore | None, clip_seconds: float | None) -> ModelNeed:
    estimate = memory.estimate(spec, device, dtype=dtype, clip_seconds=clip_seconds)
    if estimate.overridden_gb is not None:
        return ModelNeed(spec.key, estimate.total_gb, estimate.total_gb, "registry",
                         estimate.dtype)
    known = measured.need(spec, device, estimate.dtype, clip_seconds) if measured else None
    if known is not None:
        retained = known.retained_gb if known.retained_gb is not None else known.peak_gb
        return ModelNeed(spec.key, known.peak_gb, min(retained, known.peak_gb),
                         f"measured {known.when}", estimate.dtype)
    return ModelNeed(spec.key, estimate.total_gb, estimate.total_gb, "estimated", estimate.dtype)


def language_warnings(specs: list[AsrModelSpec], languages: dict[str | None, int],
                      all_languages: bool = False) -> list[str]:
    """One line per model that does not transcribe some of the samples' languages."""
    total = sum(languages.values())
    out = []
    for spec in dict.fromkeys(specs):
        other = {lang: n for lang, n in languages.items() if lang and not spec.supports(lang)}
        if not other:
            continue
        count = sum(other.values())
        which = ", ".join(f"{n} {lang}" for lang, n in sorted(other.items()))
        fate = ("will be decoded anyway (all languages asked for)" if all_languages else
                "will be skipped (wrong language) and left out of its scores")
        out.append(f"{spec.key} transcribes {', '.join(spec.languages)} only: {count} of "
                   f"{plural(total, 'sample')} ({which}) {fate}")
    return out


def make_plan(
    specs: list[AsrModelSpec],
    machine: MachineInfo,
    device: str = "cpu",
    budget_gb: float | None = None,
    named: dict[str, list[AsrModelSpec]] | None = None,
    audio_seconds: float = 0.0,
    languages: dict[str | None, int] | None = None,
    all_languages: bool = False,
    dtype: str = "auto",
    measured: MeasurementStore | None = None,
    clip_seconds: float | None = None,
) -> Plan:
    """Group ``specs`` (or keep the ``named`` batches) within the budget, saying why.

    Named batches keep their membership but are split where they would exceed
    the budget or the strategy's model count. ``measured`` (this machine's record
    of earlier runs) replaces estimates where it knows the model; ``languages``
    (sample counts by language) adds a warning for each model that does not
    transcribe some.
    """
    available = available_memory_gb(machine, device)
    budget = budget_gb if budget_gb is not None else available * BUDGET_SHARE
    plan = Plan(device=device, budget_gb=budget, available_gb=available,
                strategy=pick_strategy(available))
    groups = named if named else {"": specs}
    counter = 0
    for group_name, members in groups.items():
        fitting: list[ModelNeed] = []
        for spec in dict.fromkeys(members):  # de-duplicate, keep order
            need = model_need(spec, device, dtype, measured, clip_seconds, budget)
            need.seconds, need.seconds_source = estimate_model_seconds(
                spec, device, audio_seconds, _requested(need, dtype), measured)
            if need.need_gb > budget:
                plan.refused.append(Refusal(
                    spec.key, f"needs {format_gb(need.need_gb)} on {device} ({need.source}, "
                              f"{need.dtype}), more than the {budget:.1f} GB budget"))
            else:
                fitting.append(need)
        bins = _pack(fitting, budget, MAX_MODELS[plan.strategy])
        for part, (chosen, reason) in enumerate(bins, start=1):
            counter += 1
            if not group_name:
                name = f"batch_{counter}"
            else:
                name = group_name if len(bins) == 1 else f"{group_name}_part{part}"
            plan.batches.append(PlannedBatch(
                name=name, models=[n.model for n in chosen], need_gb=batch_need(chosen),
                reason=reason, estimated_seconds=sum(n.seconds for n in chosen),
                needs=chosen))
    everyone = [s for members in groups.values() for s in members]
    plan.warnings = language_warnings(everyone, languages or {}, all_languages)
    plan.warnings += download_warnings([n for b in plan.batches for n in b.needs])
    return plan


def download_warnings(needs: list[ModelNeed]) -> list[str]:
    """One line for the models that are not on this machine: they load only if the hub
    answers (asked for a few seconds when they start), never with HF_HUB_OFFLINE=1."""
    absent = [n for n in needs if n.missing]
    if not absent:
        return []
    which = ", ".join(f"{n.model} ({n.missing})" for n in absent)
    they = "it" if len(absent) == 1 else "they"
    fate = (f"{they} will fail: HF_HUB_OFFLINE=1" if hub.offline() else
            f"{they} load{'s' if they == 'it' else ''} only if the hub answers, and fail"
            f"{'s' if they == 'it' else ''} within seconds if it does not")
    return [f"{plural(len(absent), 'model is', 'models are')} not on this machine: {which}; "
            f"{fate}"]


def _requested(need: ModelNeed, dtype: str) -> str:
    """The dtype to ask the backend for so it loads what the plan budgeted."""
    return need.dtype if dtype == "auto" and need.dtype in ("float32", "bfloat16") else dtype


def planned_dtype(plan: Plan, model: str, dtype: str = "auto") -> str:
    """What the worker asks the backend for: the run's ``--dtype``, else the plan's choice."""
    need = next((n for b in plan.batches for n in b.needs if n.model == model), None)
    return _requested(need, dtype) if need is not None else dtype


def batch_need(needs: list[ModelNeed]) -> float:
    """The most a worker holds running these models in order, one at a time: what the
    earlier ones left behind after being freed, plus the running one's peak. Unmeasured
    models count as keeping everything ("even if nothing were freed")."""
    kept, worst = 0.0, 0.0
    for need in needs:
        worst = max(worst, kept + need.need_gb)
        kept += need.retained_gb
    return worst


def _pack(items: list[ModelNeed], budget: float,
          max_models: int) -> list[tuple[list[ModelNeed], str]]:
    """First-fit decreasing; heavy models (> a third of the budget) always alone."""
    bins: list[list[ModelNeed]] = []
    for item in sorted(items, key=lambda n: -n.need_gb):
        if item.need_gb > budget * HEAVY_SHARE:
            bins.append([item])
            continue
        for bin_ in bins:
            heavy = any(n.need_gb > budget * HEAVY_SHARE for n in bin_)
            if not heavy and len(bin_) < max_models and batch_need([*bin_, item]) <= budget:
                bin_.append(item)
                break
        else:
            bins.append([item])
    out = []
    for bin_ in bins:
        total = batch_need(bin_)
        if len(bin_) == 1 and bin_[0].need_gb > budget * HEAVY_SHARE:
            reason = (f"heavy: {format_gb(bin_[0].need_gb)} is over a third of the "
                      f"{budget:.1f} GB budget, so it runs alone")
        elif any(n.retained_gb < n.need_gb for n in bin_[:-1]):
            reason = (f"{format_gb(total)} of {budget:.1f} GB counting what each model "
                      "measurably leaves behind once freed")
        else:
            reason = f"{format_gb(total)} of {budget:.1f} GB even if nothing were freed"
        out.append((bin_, reason))
    return out
