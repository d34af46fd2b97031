"""A run's plan: its config over its dataset's samples, handed to the memory planner.

:mod:`core.evaluation.planner` packs models into batches from numbers alone; this
module gathers those numbers for a run (which models, how much audio in which
languages, the longest clip, the budget of this machine or of the Ray cluster), for
the run's own plan and for the page's preview alike.
"""

from __future__ import annotations

from core.asr.registry import AsrRegistry
from core.asr.spec import AsrModelSpec
from core.datasets import Sample, load_dataset_spec
from core.durations import DurationReport, fill_durations
from core.evaluation import cluster
from core.evaluation.config import RunConfig
from core.evaluation.measurements import MeasurementStore
from core.evaluation.planner import Plan, make_plan
from core.evaluation.run_dir import RunDir
from core.evaluation.run_error import RunError
from core.languages import language_key
from core.system import BUDGET_SHARE, read_machine

from dataclasses import dataclass


def selected_specs(config: RunConfig, registry: AsrRegistry
                   ) -> tuple[list[AsrModelSpec], dict[str, list[AsrModelSpec]] | None]:
    """The models of the run: named batches keep their grouping; ``--models`` adds more."""
    named = {name: registry.batch(name) for name in config.batches} or None
    extra = [registry.get(key) for key in config.models]
    if named and extra:
        named["custom"] = extra
    if not named and not extra:
        raise RunError("choose models (--models) or named batches (--batches)")
    return extra, named


def plan_run(config: RunConfig, registry: AsrRegistry | None = None,
             audio_seconds: float = 0.0, languages: dict[str | None, int] | None = None,
             clip_seconds: float | None = None, ask_cluster: bool = False,
             durations: DurationReport | None = None) -> Plan:
    """The plan of ``config``; ``languages`` (sample counts by language, see
    :func:`language_counts`) lets it warn about models that do not speak some.
    ``ask_cluster``: for a cluster run, budget with the cluster's memory (joining it; the
    run's own plan does, a preview keeps this machine's figures). ``durations``: where the
    clip durations came from (:func:`core.durations.fill_durations`), for the plan to say
    and to name the files left out of its time estimate."""
    registry = registry or config.registry()
    specs, named = selected_specs(config, registry)
    budget, where = config.budget_gb, None
    if ask_cluster and config.cluster and budget is None:  # the workers run there
        memory, where = cluster.plan_memory_gb(config.cluster, config.device)
        budget = memory * BUDGET_SHARE if memory else None
    store = MeasurementStore()
    try:
        plan = make_plan(specs, read_machine(), device=config.device,
                         budget_gb=budget, named=named, audio_seconds=audio_seconds,
                         languages=languages, all_languages=config.all_languages,
                         dtype=config.dtype, measured=store, clip_seconds=clip_seconds)
        plan.conditions = list(config.conditions)
        if where:
            plan.budget_from = f"the cluster: {where}" if budget else f"this machine ({where})"
        if durations is not None:
            plan.durations = durations.describe()
            plan.warnings += durations.warnings()
        return plan
    finally:
        store.close()


@dataclass(frozen=True)
class WorkFacts:
    """What a plan needs of a dataset: over what the models will hear, every clip under
    every condition (a speed condition changes a clip's length)."""

    clips: int
    audio_seconds: float
    languages: dict[str | None, int]
    longest: float | None
    durations: DurationReport


def work_facts(config: RunConfig, samples: list[Sample]) -> WorkFacts:
    """``samples``' facts under ``config``'s conditions, their missing durations first read
    from their audio headers (a manifest without them would otherwise plan ~0 s)."""
    durations = fill_durations(samples)
    items = config.work_items(samples)  # with conditions: models × conditions × audio
    return WorkFacts(len(samples), total_seconds(items),
                     language_counts(items, config.decode.language), longest_clip(items),
                     durations)


def plan_facts(config: RunConfig, registry: AsrRegistry | None, facts: WorkFacts,
               ask_cluster: bool = False) -> Plan:
    """The plan of ``config`` over a dataset's :class:`WorkFacts`."""
    return plan_run(config, registry, facts.audio_seconds, facts.languages, facts.longest,
                    ask_cluster=ask_cluster, durations=facts.durations)


def plan_samples(config: RunConfig, registry: AsrRegistry | None, samples: list[Sample],
                 ask_cluster: bool = False) -> Plan:
    """The plan of ``config`` over ``samples`` (:func:`work_facts`)."""
    return plan_facts(config, registry, work_facts(config, samples), ask_cluster)


def plan_on_cluster(run: RunDir, config: RunConfig, plan: Plan) -> Plan:
    """A cluster run planned without the cluster (launched from the page, whose server
    must not join it), and not begun: planned again with the cluster's memory, and saved.
    Any other run keeps ``plan``."""
    if not config.cluster or config.budget_gb is not None or plan.budget_from or \
            run.records().sample_rows():
        return plan
    samples = load_dataset_spec(config.dataset, config.samples, config.seed)
    fresh = plan_samples(config, None, samples, ask_cluster=True)
    if fresh.batches:
        run.write_plan(fresh)
        return fresh
    return plan


def total_seconds(samples: list[Sample]) -> float:
    """The audio the samples hold, in seconds, counting the clips whose length is known
    (see :func:`core.durations.fill_durations` for the others)."""
    return sum(s.duration or 0.0 for s in samples)


def longest_clip(samples: list[Sample]) -> float | None:
    """The dataset's longest clip in seconds (what a batch's memory peaks on); None when
    a duration is unknown."""
    durations = [s.duration for s in samples]
    return max(durations) if durations and None not in durations else None  # type: ignore[type-var]


def language_counts(samples: list[Sample], override: str | None = None
                    ) -> dict[str | None, int]:
    """Samples per language (the run's ``--language`` override, else each sample's own)."""
    counts: dict[str | None, int] = {}
    for sample in samples:
        language = language_key(override or sample.language)
        counts[language] = counts.get(language, 0) + 1
    return counts
