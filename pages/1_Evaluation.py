"""ASR evaluation: choose data and models, see the plan, run in the background, watch it."""

import core  # noqa: F401  (thread caps first)
from core.asr.registry import AsrRegistryError
from core.compare import display_rows, summary_row, with_figures
from core.conditions import ConditionError, choices, load_conditions
from core.datasets import DatasetError, dataset_label, load_dataset_spec
from core.demo_data import DEMOS, DemoDataError, demo_ready, ensure_demo, find_demo
from core.evaluation import run_plan, run_progress, runner
from core.evaluation.config import RunConfig
from core.evaluation.measurements import last_change
from core.evaluation.planner import (
    ModelNeed,
    format_duration,
    format_gb,
    model_needs,
    plan_budget,
)
from core.evaluation.run_dir import PLAN_FILE, RunDir, run_dirs
from core.evaluation.shards import run_devices
from core.evaluation.summary import (
    invariance_label,
    plan_against_run,
    speed_label,
    worker_row,
)
from core.hub import ModelUnavailableError
from core.phrasing import plural

from pathlib import Path

import pandas as pd
import streamlit as st

from ui.common import asr_registry, gpu_toggle, results_dir, thread_info

st.set_page_config(page_title="ERT — ASR evaluation", page_icon=":material/analytics:",
                   layout="wide")
device = gpu_toggle()
thread_info()
registry = asr_registry()
out_dir = Path(results_dir())

st.title("ASR evaluation")

# ---------------------------------------------------------------- data and models
def demo_picks_its_model() -> None:
    """A demo set starts with the model that suits its clips (tiny.en for English)."""
    demo = find_demo(st.session_state.dataset_kind)
    if demo is not None:
        st.session_state.eval_models = [demo.model]


left, right = st.columns(2)
with left:
    st.subheader("Dataset")
    kind = st.radio("Source", [d.label for d in DEMOS] + ["Manifest file", "Folder",
                                                          "Hugging Face"],
                    horizontal=True, key="dataset_kind", on_change=demo_picks_its_model)
    demo = find_demo(kind)
    if demo is not None:
        spec = str(demo.manifest())
        st.caption(f"**{dataset_label(spec)}**: {demo.note}")
        if not demo_ready(demo):  # made on first use (a few seconds), like the CLI
            try:
                with st.spinner("Generating the demo dataset with espeak-ng (once)…"):
                    ensure_demo(demo)
            except (DemoDataError, OSError) as exc:
                st.error(f"The demo dataset cannot be generated: {exc}")
                spec = ""
    elif kind == "Manifest file":
        spec = st.text_input("Manifest (.jsonl or .csv)", placeholder="data/test/manifest.jsonl")
    elif kind == "Folder":
        spec = st.text_input("Folder of audio files with same-named .txt transcripts")
    else:
        spec = st.text_input("Dataset", value="hf:facebook/multilingual_librispeech:french:test",
                             help="hf:NAME[:CONFIG[:SPLIT]] — needs the hub or its cache")
    if spec and demo is None:
        st.caption(f"**{dataset_label(spec)}**")
    samples = st.number_input("Samples (reproducible subset; 0 = all)", 0, 100000, 10)


@st.cache_data(show_spinner="Reading the dataset…", ttl=60)
def dataset_facts(spec: str, samples: int, conditions: tuple[str, ...]
                  ) -> run_plan.WorkFacts:
    return run_plan.work_facts(RunConfig(dataset=spec, conditions=list(conditions)),
                               load_dataset_spec(spec, samples or None))


@st.cache_data(ttl=60)
def condition_choices() -> list[str]:
    return choices(load_conditions())


try:
    offered, offered_error = condition_choices(), None
except ConditionError as exc:  # a malformed configs/conditions.toml: said, the page goes on
    offered, offered_error = [], exc
with left:
    conditions = st.multiselect(
        "Robustness conditions", offered, key="eval_conditions",
        placeholder="none: the clips as they are",
        help="Also hear every clip under these conditions (configs/conditions.toml): noise "
             "at an SNR, telephone, codecs, reverberation, speed… Every model × every "
             "condition on the same clips; add clean to measure each model's degradation. "
             "A name alone is every severity of it.")
    if offered_error is not None:
        st.error(str(offered_error))


@st.cache_data(show_spinner=False, max_entries=32, ttl=60)
def picker_needs(device: str, clip_seconds: float | None, budget_gb: float,
                 measured: float) -> dict[str, ModelNeed]:
    """Every model's figure as the plan would give it (``measured``: when this machine's
    measurements last changed, so a new one shows at once; a download within a minute)."""
    return model_needs(list(registry.models.values()), device, clip_seconds=clip_seconds,
                       budget_gb=budget_gb)


facts, facts_error = None, None
if spec and (demo is None or demo_ready(demo)):
    try:
        facts = dataset_facts(spec, int(samples), tuple(conditions))
    except (DatasetError, ValueError, OSError) as exc:  # said in the plan's place below
        facts_error = exc
with right:
    st.subheader("Models")
    batches = st.multiselect("Named batches", list(registry.batches), key="eval_batches",
                             help="Groups from configs/asr_models.toml")
    # The plan's own figure for each model (this dataset's clips, this machine's measurements,
    # the budget), and whether it is on this machine: the same text as in the plan below.
    needs = picker_needs(device, facts.longest if facts else None,
                         round(plan_budget(device, st.session_state.get("eval_budget")), 1),
                         last_change())
    models = st.multiselect(
        "Models", list(registry.models), key="eval_models",
        default=["faster-whisper:tiny.en"] if not batches else [],
        format_func=lambda k: needs[k].option())
    budget = st.number_input("Memory budget (GB, 0 = 80 % of what is free)", 0.0, 2048.0, 0.0,
                             step=0.5, key="eval_budget")
    check_invariance = st.checkbox(
        "Check batch invariance", key="eval_invariance",
        help="Re-decode up to 32 batched clips per model at batch size 1 and report how many "
             "transcripts differ, and the WER difference: the evaluation's own numerical "
             "noise floor, beside the 95 % interval.")
    run_on = st.radio("Run on", ["This machine", "Ray cluster"], horizontal=True,
                      key="eval_run_on",
                      help="This machine: one worker, or one per GPU when several are visible. "
                           "Ray cluster: the workers as Ray tasks (the results folder and the "
                           "dataset must be on a path every node sees).")
    cluster_address = st.text_input(
        "Ray cluster at", value="auto", key="eval_cluster",
        help="auto: the cluster this machine joined (`ray start --address …`); local: Ray "
             "started here; or HOST:PORT") if run_on == "Ray cluster" else None


def make_config() -> RunConfig:
    run_device, devices = run_devices(None, device, cluster_address)
    config = RunConfig(dataset=spec, models=list(models), batches=list(batches),
                     samples=int(samples) or None, device=run_device,
                     budget_gb=float(budget) or None, out_dir=str(out_dir),
                     devices=devices, cluster=cluster_address or None,
                     check_batch_invariance=32 if check_invariance else 0,
                     conditions=list(conditions))
    config.resolve_conditions()  # "noise" is every severity of it, in the plan too
    return config


# ---------------------------------------------------------------- plan
st.subheader("Plan")
plan = None
ready = bool(spec) and (models or batches) and (demo is None or demo_ready(demo))
if not ready:
    st.info("Choose a dataset and at least one model or batch to see the plan.")
else:
    try:
        if facts_error is not None:
            raise facts_error
        plan = run_plan.plan_facts(make_config(), registry, facts)
    except (DatasetError, ModelUnavailableError, AsrRegistryError, runner.RunError,
            ValueError, OSError) as exc:
        st.error(str(exc))
if plan is not None:
    cols = st.columns(4)
    cols[0].metric("Samples", f"{facts.clips}")  # plain captions: a delta arrow would mean a change
    cols[0].caption(f"{facts.audio_seconds / 60:.1f} min of audio"
                    + (f" (× {len(plan.conditions)} conditions)" if plan.conditions else ""))
    cols[1].metric("Free memory", f"{plan.available_gb:.1f} GB")
    cols[1].caption(f"budget {plan.budget_gb:.1f} GB")
    cols[2].metric("Strategy", plan.strategy.value)
    cols[3].metric("Estimated time", format_duration(plan.estimated_seconds))
    if plan.durations:
        cols[3].caption(f"clip durations {plan.durations}")
    st.dataframe(pd.DataFrame([{
        "batch": b.name,
        "models": "; ".join(n.option() for n in b.needs) or ", ".join(b.models),
        "needs": format_gb(b.need_gb),
        "of budget": f"{100 * b.need_gb / plan.budget_gb:.0f} %",
        "time": format_duration(b.estimated_seconds), "why": b.reason} for b in plan.batches]),
        hide_index=True, width="stretch")
    if plan.conditions:
        st.caption(plan.conditions_line().capitalize())
    for refusal in plan.refused:
        st.warning(f"{refusal.model} is left out: {refusal.reason}")
    for warning in plan.warnings:
        st.warning(warning)

active = runner.active_run(out_dir) if out_dir.exists() else None
if st.button("Start evaluation", icon=":material/play_arrow:", type="primary",
             disabled=plan is None or not plan.batches):
    try:
        # The run selector follows the run just started (its widget state would otherwise
        # keep showing the one it showed before).
        st.session_state.eval_run_choice = runner.launch(make_config(), registry).name
        st.rerun()
    except runner.RunError as exc:
        st.error(str(exc))

# ---------------------------------------------------------------- runs
st.subheader("Run")
runs = [run.path for run in run_dirs(out_dir)]
if not runs:
    st.caption("No run yet.")
    st.stop()
names = [p.name for p in runs]
if st.session_state.get("eval_run_choice") not in names:  # first visit: the run going, if any
    st.session_state.eval_run_choice = (active or runs[0]).name


@st.cache_data(max_entries=1000, show_spinner=False)
def cached_title(folder: str, written: float) -> str:
    """Read once per run folder and plan (``written``: the plan's mtime)."""
    run = RunDir(Path(folder))
    try:
        manifest, models = run.read_manifest(), run.read_plan().models
    except (OSError, ValueError, KeyError):
        return run.name
    return (f"{run.name} · {dataset_label(manifest.get('dataset'))} · "
            f"{plural(len(models), 'model')}")


def run_title(name: str) -> str:
    """The run id with what it evaluated: ``… · demo-data · 2 models``."""
    try:
        written = (out_dir / name / PLAN_FILE).stat().st_mtime
    except OSError:
        return name
    return cached_title(str(out_dir / name), written)


chosen = st.selectbox("Run", names, key="eval_run_choice", format_func=run_title)
run_dir = out_dir / chosen


was_running = runner.is_running(run_dir)


# Polls only while the run is going, so an idle page costs no CPU.
@st.fragment(run_every=1.0 if was_running else None)
def live_progress() -> None:
    info = run_progress.progress_of(run_dir)
    if not info:
        st.caption("This run has no progress yet.")
        return
    status = info["status"]
    running = info["running"]
    if was_running and not running:
        st.rerun()  # finished: redraw the whole page once, without polling
    label = ("running" if running else "finished" if info["done"] >= info["total"] else
             "stopped")
    per_model = max((m["total"] for m in info["models"].values()), default=0)
    st.progress(info["done"] / max(info["total"], 1),
                text=f"{label} · {plural(per_model, 'sample')} × "
                     f"{plural(len(info['models']), 'model')} · {info['done']} of "
                     f"{info['total']} done")
    st.dataframe(pd.DataFrame(run_progress.progress_rows(info)), hide_index=True, width="stretch",
                 placeholder="—",
                 column_config={
                     "progress": st.column_config.ProgressColumn("progress", min_value=0,
                                                                 max_value=1),
                     "batch size": st.column_config.NumberColumn(format="%d"),
                     "samples/s": st.column_config.NumberColumn(format="%.1f")})
    if running and status.get("shards"):  # data-parallel workers: where each one is
        st.caption("Workers (one per device; each takes its share of every model's samples)")
        st.dataframe(pd.DataFrame([worker_row(s) for s in status["shards"]]), hide_index=True,
                     width="stretch", placeholder="—")
    cols = st.columns(3)
    if running:
        if cols[0].button("Cancel", icon=":material/stop:",
                          disabled=info["cancel_requested"]):
            RunDir(run_dir).request_cancel()
            st.toast("Cancelling after the current step…")
    elif info["done"] < info["total"] and cols[0].button("Resume", icon=":material/resume:"):
        runner.spawn(run_dir)
        st.rerun()
    if not running:
        summaries = RunDir(run_dir).read_summaries()
        if summaries:
            # RTFx as words: "— (all cached)", "12.3 on 10 of 24 clips".
            # A failure's reason right after its status, where it is seen.
            results = [{**summary_row(v), "rtfx": speed_label(v),
                        "error": run_progress.failure_reason(v.error)} for v in summaries.values()]
            number = st.column_config.NumberColumn
            st.dataframe(pd.DataFrame(display_rows(results, with_figures([
                "model", "status", "error", "wer", "wer_ci", "cer", "bleu", "chrf", "rtfx",
                "success_rate", "timed", "cached", "failures", "skipped", "batch_size",
                "peak_rss_gb"]))), hide_index=True, width="stretch", placeholder="—",
                column_config={"WER %": number(format="%.1f"), "CER %": number(format="%.1f"),
                               "BLEU": number(format="%.1f"), "chrF": number(format="%.1f"),
                               "success %": number(format="%.0f"),
                               "batch size": number(format="%d"),
                               "peak RAM GB": number(format="%.2f")})
            st.caption("RTFx: seconds of audio per second of model compute, measured on the "
                       "clips the model transcribed in this run (not those from the cache).")
            st.markdown("**Plan against run** — memory above the worker's own while each "
                        "model ran, and time with its load")
            st.table(pd.DataFrame([{"model": k, "plan vs run": plan_against_run(v)}  # wraps
                                   for k, v in summaries.items()]), hide_index=True)
            checks = {k: invariance_label(v) for k, v in summaries.items()
                      if invariance_label(v)}
            if checks:
                st.markdown("**Batch invariance** — clips re-decoded alone against their "
                            "batched transcript")
                st.dataframe(pd.DataFrame([{"model": k, "check": v} for k, v in checks.items()]),
                             hide_index=True, width="stretch")
            chart = RunDir(run_dir).chart()
            if chart is not None:
                st.image(str(chart))
            where_it_fails(run_dir)


def where_it_fails(run_dir: Path) -> None:
    """WER by slice of the run (clip length, language, dataset, manifest columns), with
    intervals: the Compare page's "Where models fail" tab has the rest (baseline verdicts,
    error anatomy, hallucinations)."""
    from core.compare import detailed_rows
    from core.failure_views import run_report, slice_chart, slice_columns, slice_rows

    rows = detailed_rows(run_dir)
    if not rows:
        return
    st.markdown("**Where it fails** — WER by slice, with 95 % intervals")
    column = st.selectbox("Slice by", slice_columns(rows), key="eval_slice")
    sliced = slice_rows(run_report(run_dir, [column]), column)
    if not sliced:
        st.caption(f"Every sample of this run has the same {column}, or none.")
        return
    st.dataframe(pd.DataFrame(display_rows(sliced, ["slice", "model", "samples", "wer",
                                                    "wer_ci", "cer"])),
                 hide_index=True, width="stretch", placeholder="—")
    st.altair_chart(slice_chart(sliced), width="stretch")


live_progress()
