"""ASR evaluation: choose data and models, see the plan, run in the background, watch it."""

import core  # noqa: F401  (thread caps first)
from core.asr.memory import need_gb
from core.asr.registry import AsrRegistryError
from core.datasets import DatasetError, load_dataset_spec
from core.demo_data import default_manifest
from core.evaluation import runner
from core.evaluation.config import RunConfig
from core.evaluation.planner import format_duration
from core.evaluation.run_dir import RunDir, run_dirs
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
        if not DEMO.exists():
            st.caption("40 English and 40 French sentences spoken by espeak-ng.")
            if st.button("Generate the demo dataset"):
                from core.demo_data import make_demo_dataset

                with st.spinner("Synthesising speech…"):
                    make_demo_dataset(DEMO.parent)
                st.rerun()
    elif kind == "Manifest file":
        spec = st.text_input("Manifest (.jsonl or .csv)", placeholder="data/test/manifest.jsonl")
    elif kind == "Folder":
        spec = st.text_input("Folder of audio files with same-named .txt transcripts")
    else:
        spec = st.text_input("Dataset", value="hf:facebook/multilingual_librispeech:french:test",
                             help="hf:NAME[:CONFIG[:SPLIT]] — needs the hub or its cache")
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


@st.cache_data(show_spinner="Reading the dataset…", ttl=60)
def dataset_facts(spec: str, samples: int) -> tuple[int, float, dict[str | None, int]]:
    items = load_dataset_spec(spec, samples or None)
    return len(items), sum(s.duration or 0.0 for s in items), runner.language_counts(items)


def make_config() -> RunConfig:
    return RunConfig(dataset=spec, models=list(models), batches=list(batches),
                     samples=int(samples) or None, device=device,
                     budget_gb=float(budget) or None, out_dir=str(out_dir))


# ---------------------------------------------------------------- plan
st.subheader("Plan")
plan = None
ready = bool(spec) and (models or batches) and (kind != "Demo (espeak-ng)" or DEMO.exists())
if not ready:
    st.info("Choose a dataset and at least one model or batch to see the plan.")
else:
    try:
        count, audio_seconds, languages = dataset_facts(spec, int(samples))
        plan = runner.plan_run(make_config(), registry, audio_seconds, languages)
    except (DatasetError, ModelUnavailableError, AsrRegistryError, runner.RunError,
            ValueError) as exc:
        st.error(str(exc))
if plan is not None:
    cols = st.columns(4)
    cols[0].metric("Samples", f"{count}", f"{audio_seconds / 60:.1f} min of audio",
                   delta_color="off")
    cols[1].metric("Free memory", f"{plan.available_gb:.1f} GB", f"budget {plan.budget_gb:.1f}"
                   " GB", delta_color="off")
    cols[2].metric("Strategy", plan.strategy.value)
    cols[3].metric("Estimated time", format_duration(plan.estimated_seconds))
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
chosen = st.selectbox("Run", names, index=names.index(default.name) if default.name in names
                      else 0, key="eval_run_choice")
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
    st.progress(info["done"] / max(info["total"], 1),
                text=f"{label} · {info['done']}/{info['total']} samples")
    rows = []
    for model, m in info["models"].items():
        current = running and status.get("model") == model
        rows.append({"model": model, "batch": m["batch"],
                     "progress": m["done"] / max(m["total"], 1),
                     "done": f"{m['done']}/{m['total']}", "failures": m["failures"],
                     "status": m["status"] or ("running" if current else "waiting"),
                     "batch size": status.get("batch_size") if current else None,
                     "samples/s": status.get("samples_per_s") if current else None})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=1)})
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
            def pct(value: float | None) -> float | None:
                return None if value is None else round(100 * value, 2)

            st.dataframe(pd.DataFrame([{
                "model": k, "status": v.status, "WER %": pct(v.wer),
                "WER 95 % interval": (f"{100 * v.wer_ci[0]:.1f}–{100 * v.wer_ci[1]:.1f}"
                                      if v.wer_ci else None),
                "CER %": pct(v.cer), "BLEU": v.bleu, "RTFx": v.rtfx,
                "success %": 100 * v.success_rate, "skipped": v.skipped,
                "batch size": v.batch_size, "peak RAM GB": v.peak_rss_gb,
                "error": v.error} for k, v in summaries.items()]), hide_index=True,
                width="stretch")
            charts = sorted(run_dir.glob("comparison_*.png"))
            if charts:
                st.image(str(charts[-1]))


live_progress()
