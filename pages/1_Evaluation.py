"""ASR evaluation: choose data and models, see the plan, run in the background, watch it."""

import core  # noqa: F401  (thread caps first)
from core.asr.memory import need_gb
from core.asr.registry import AsrRegistryError
from core.compare import display_rows, summary_row
from core.datasets import DatasetError, dataset_label, load_dataset_spec
from core.demo_data import DemoDataError, default_manifest, make_demo_dataset
from core.durations import DurationReport, fill_durations
from core.evaluation import runner
from core.evaluation.config import RunConfig
from core.evaluation.planner import format_duration
from core.evaluation.run_dir import RunDir, run_dirs
from core.evaluation.shards import run_devices
from core.evaluation.summary import (
    invariance_label,
    plan_against_run,
    plural,
    speed_label,
    worker_row,
)
from core.hub import ModelUnavailableError

from pathlib import Path

import pandas as pd
import streamlit as st

from ui.common import asr_registry, gpu_toggle, results_dir, thread_info

st.set_page_config(page_title="ERT — ASR evaluation", page_icon="📊", layout="wide")
device = gpu_toggle()
thread_info()
registry = asr_registry()
out_dir = Path(results_dir())
DEMO = default_manifest()

st.title("📊 ASR evaluation")

# ---------------------------------------------------------------- data and models
left, right = st.columns(2)
with left:
    st.subheader("Dataset")
    kind = st.radio("Source", ["Demo (espeak-ng)", "Manifest file", "Folder", "Hugging Face"],
                    horizontal=True, key="dataset_kind")
    if kind == "Demo (espeak-ng)":
        spec = str(DEMO)
        st.caption(f"**{dataset_label(spec)}**: 40 English and 40 French sentences spoken by "
                   "espeak-ng.")
        if not DEMO.exists():  # made on first use (80 clips take a few seconds), like the CLI
            try:
                with st.spinner("Generating the demo dataset with espeak-ng (once)…"):
                    make_demo_dataset(DEMO.parent)
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
    if spec and kind != "Demo (espeak-ng)":
        st.caption(f"**{dataset_label(spec)}**")
    samples = st.number_input("Samples (reproducible subset; 0 = all)", 0, 100000, 10)
with right:
    st.subheader("Models")
    batches = st.multiselect("Named batches", list(registry.batches), key="eval_batches",
                             help="Groups from configs/asr_models.toml")
    models = st.multiselect(
        "Models", list(registry.models), key="eval_models",
        default=["faster-whisper:tiny.en"] if not batches else [],
        format_func=lambda k: f"{k} · {need_gb(registry.get(k), device):.1f} GB")
    budget = st.number_input("Memory budget (GB, 0 = 80 % of what is free)", 0.0, 2048.0, 0.0,
                             step=0.5)
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


@st.cache_data(show_spinner="Reading the dataset…", ttl=60)
def dataset_facts(spec: str, samples: int
                  ) -> tuple[int, float, dict[str | None, int], float | None, DurationReport]:
    items = load_dataset_spec(spec, samples or None)
    durations = fill_durations(items)  # a manifest without durations: read from the audio
    return (len(items), runner.total_seconds(items), runner.language_counts(items),
            runner.longest_clip(items), durations)


def make_config() -> RunConfig:
    run_device, devices = run_devices(None, device, cluster_address)
    return RunConfig(dataset=spec, models=list(models), batches=list(batches),
                     samples=int(samples) or None, device=run_device,
                     budget_gb=float(budget) or None, out_dir=str(out_dir),
                     devices=devices, cluster=cluster_address or None,
                     check_batch_invariance=32 if check_invariance else 0)


# ---------------------------------------------------------------- plan
st.subheader("Plan")
plan = None
ready = bool(spec) and (models or batches) and (kind != "Demo (espeak-ng)" or DEMO.exists())
if not ready:
    st.info("Choose a dataset and at least one model or batch to see the plan.")
else:
    try:
        count, audio_seconds, languages, longest, durations = dataset_facts(spec, int(samples))
        plan = runner.plan_run(make_config(), registry, audio_seconds, languages, longest,
                               durations=durations)
    except (DatasetError, ModelUnavailableError, AsrRegistryError, runner.RunError,
            ValueError) as exc:
        st.error(str(exc))
if plan is not None:
    cols = st.columns(4)
    cols[0].metric("Samples", f"{count}")  # plain captions: a delta arrow would mean a change
    cols[0].caption(f"{audio_seconds / 60:.1f} min of audio")
    cols[1].metric("Free memory", f"{plan.available_gb:.1f} GB")
    cols[1].caption(f"budget {plan.budget_gb:.1f} GB")
    cols[2].metric("Strategy", plan.strategy.value)
    cols[3].metric("Estimated time", format_duration(plan.estimated_seconds))
    if plan.durations:
        cols[3].caption(f"clip durations {plan.durations}")
    st.dataframe(pd.DataFrame([{
        "batch": b.name, "models": ", ".join(b.models), "needs (GB)": round(b.need_gb, 2),
        "of budget": f"{100 * b.need_gb / plan.budget_gb:.0f} %",
        "time": format_duration(b.estimated_seconds), "why": b.reason} for b in plan.batches]),
        hide_index=True, width="stretch")
    for refusal in plan.refused:
        st.warning(f"{refusal.model} is left out: {refusal.reason}")
    for warning in plan.warnings:
        st.warning(warning)

active = runner.active_run(out_dir) if out_dir.exists() else None
if st.button("▶ Start evaluation", type="primary", disabled=plan is None or not plan.batches):
    try:
        st.session_state.eval_run = str(runner.launch(make_config(), registry))
        st.rerun()
    except runner.RunError as exc:
        st.error(str(exc))

# ---------------------------------------------------------------- runs
st.subheader("Run")
runs = [run.path for run in run_dirs(out_dir)]
if not runs:
    st.caption("No run yet.")
    st.stop()
default = active or Path(st.session_state.get("eval_run", runs[0]))
names = [p.name for p in runs]


def run_title(name: str) -> str:
    """The run id with what it evaluated: ``… · demo-data · 2 models``."""
    try:
        manifest = RunDir(out_dir / name).read_manifest()
        models = RunDir(out_dir / name).read_plan().models
    except (OSError, ValueError, KeyError):
        return name
    return f"{name} · {dataset_label(manifest.get('dataset'))} · {plural(len(models), 'model')}"


chosen = st.selectbox("Run", names, index=names.index(default.name) if default.name in names
                      else 0, key="eval_run_choice", format_func=run_title)
run_dir = out_dir / chosen


was_running = runner.is_running(run_dir)


# Polls only while the run is going, so an idle page costs no CPU.
@st.fragment(run_every=1.0 if was_running else None)
def live_progress() -> None:
    info = runner.progress_of(run_dir)
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
    rows = []
    for model, m in info["models"].items():
        current = running and status.get("model") == model
        rows.append({"model": model, "batch": m["batch"],
                     "progress": m["done"] / max(m["total"], 1),
                     "samples": f"{m['done']} of {m['total']}", "failed": m["failures"],
                     "status": m["status"] or ("running" if current else "waiting"),
                     "batch size": status.get("batch_size") if current else None,
                     "samples/s": status.get("samples_per_s") if current else None})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", placeholder="—",
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
        if cols[0].button("⏹ Cancel", disabled=info["cancel_requested"]):
            RunDir(run_dir).request_cancel()
            st.toast("Cancelling after the current step…")
    elif info["done"] < info["total"] and cols[0].button("⏯ Resume"):
        runner.spawn(run_dir)
        st.rerun()
    if not running:
        summaries = RunDir(run_dir).read_summaries()
        if summaries:
            # RTFx as words: "— (all cached)", "12.3 on 10 of 24 clips".
            results = [{**summary_row(v), "rtfx": speed_label(v)} for v in summaries.values()]
            number = st.column_config.NumberColumn
            st.dataframe(pd.DataFrame(display_rows(results, [
                "model", "status", "wer", "wer_ci", "cer", "bleu", "chrf", "rtfx",
                "success_rate", "timed", "cached", "failures", "skipped", "batch_size",
                "peak_rss_gb", "error"])), hide_index=True, width="stretch", placeholder="—",
                column_config={"WER %": number(format="%.1f"), "CER %": number(format="%.1f"),
                               "BLEU": number(format="%.1f"), "chrF": number(format="%.1f"),
                               "success %": number(format="%.0f"),
                               "batch size": number(format="%d"),
                               "peak RAM GB": number(format="%.2f")})
            st.caption("RTFx: seconds of audio per second of model compute, measured on the "
                       "clips the model transcribed in this run (not those from the cache).")
            st.markdown("**Plan against run** — memory above the worker's own while each "
                        "model ran, and time with its load")
            st.dataframe(pd.DataFrame([{"model": k, "plan vs run": plan_against_run(v)}
                                       for k, v in summaries.items()]),
                         hide_index=True, width="stretch")
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


live_progress()
