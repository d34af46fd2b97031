"""Compare runs and models, a baseline against a fine-tune, samples, and an uploaded clip."""

import core  # noqa: F401  (thread caps first)
from core.asr.memory import need_gb
from core.audio import AudioError, load_audio
from core.compare import (
    METRICS,
    compare_models,
    detailed_rows,
    highlight,
    list_runs,
    model_rows,
    normalizer_warning,
    to_csv,
)
from core.metrics import QualityBand
from core.transcribe import transcribe_clip

import pandas as pd
import plotly.express as px
import streamlit as st

from ui.common import asr_registry, gpu_toggle, results_dir, thread_info

st.set_page_config(page_title="ERT — compare", page_icon="⚖️", layout="wide")
device = gpu_toggle()
thread_info()
st.title("⚖️ Compare")
MAX_UPLOAD_MB = 25
BANDS = ("excellent < 10 % · good 10–20 % · acceptable 20–30 % · to improve > 30 %")

runs_tab, ab_tab, sample_tab, upload_tab = st.tabs(
    ["Runs", "Baseline vs candidate", "Per sample", "Upload audio"])
runs = list_runs(results_dir())
by_id = {r.run_id: r for r in runs}

with runs_tab:
    if not runs:
        st.info("No finished run yet: start one on the Evaluation page or with `ert evaluate`.")
    else:
        picked = st.multiselect("Runs", list(by_id), default=list(by_id)[:1], key="cmp_runs",
                                format_func=lambda r: f"{r} · {by_id[r].dataset.split('/')[-1]}"
                                f" · {by_id[r].samples} samples")
        warning = normalizer_warning([by_id[r] for r in picked])
        if warning:
            st.warning(warning)
        rows = model_rows([by_id[r] for r in picked])
        table = pd.DataFrame(rows)
        if not table.empty:
            models = st.multiselect("Models", sorted(table["model"].unique()),
                                    default=sorted(table["model"].unique()), key="cmp_models")
            table = table[table["model"].isin(models)]
            bands = st.multiselect("WER band", [b.value for b in QualityBand],
                                   default=[b.value for b in QualityBand], help=BANDS)
            table = table[table["band"].isin(bands) | table["band"].isna()]
            sort_by = st.selectbox("Sort by", METRICS, key="cmp_sort")
            table = table.sort_values(sort_by, ascending=sort_by in {"wer", "cer", "peak_rss_gb",
                                                                     "mean_latency_s"})
            st.dataframe(table, hide_index=True, width="stretch", column_config={
                "wer": st.column_config.NumberColumn("WER %", format="%.2f"),
                "wer_low": st.column_config.NumberColumn("WER 95 % low", format="%.2f"),
                "wer_high": st.column_config.NumberColumn("WER 95 % high", format="%.2f"),
                "cer": st.column_config.NumberColumn("CER %", format="%.2f"),
                "success_rate": st.column_config.NumberColumn("success %", format="%.0f")})
            st.caption("WER bars show the 95 % interval of a paired bootstrap over the "
                       "samples; `decoding` says whether clips were decoded alone "
                       "(independent) or packed together (speed mode).")
            st.caption(f"WER bands: {BANDS}")
            st.download_button("Export CSV", to_csv(table.to_dict("records")),
                               file_name="ert_comparison.csv", mime="text/csv")
            table["label"] = table["model"] + " · " + table["run"].str[-4:]
            cols = st.columns(3)
            table["wer_plus"] = table["wer_high"] - table["wer"]
            table["wer_minus"] = table["wer"] - table["wer_low"]
            for col, metric in zip(cols * 2, ("wer", "cer", "bleu", "rtfx", "success_rate",
                                              "peak_rss_gb"), strict=False):
                bars = {"error_y": "wer_plus", "error_y_minus": "wer_minus"} \
                    if metric == "wer" else {}
                col.plotly_chart(px.bar(table, x="label", y=metric, color="model", height=280,
                                        title=metric.upper(), **bars
                                        ).update_layout(showlegend=False),
                                 key=f"bar_{metric}")

with ab_tab:
    if not runs:
        st.info("No run to compare yet.")
    else:
        run_id = st.selectbox("Run", list(by_id), key="ab_run")
        rows = detailed_rows(by_id[run_id])
        names = sorted({r["model"] for r in rows})
        if len(names) < 2:
            st.info("This run has a single model: pick a run with a baseline and a candidate.")
        else:
            c1, c2 = st.columns(2)
            base = c1.selectbox("Baseline", names, key="ab_base")
            cand = c2.selectbox("Candidate (e.g. your fine-tune)", names,
                                index=1 if names[0] == base else 0, key="ab_cand")
            result = compare_models(rows, base, cand)
            if not result["pairs"]:
                st.warning("The two models share no successfully transcribed sample.")
            else:
                verdict = result["verdict"]
                show = {"better": st.success, "worse": st.error}.get(verdict.verdict, st.info)
                show(f"**{cand}** against **{base}** — {verdict.sentence()}. The interval comes "
                     "from a paired bootstrap over the samples (1,000 resamples): when it "
                     "holds 0 the gap may be chance.")
                cols = st.columns(len(result["deltas"]))
                for col, d in zip(cols, result["deltas"], strict=True):
                    scale = 100 if d.metric in {"wer", "cer"} else 1
                    col.metric(d.metric.upper(), f"{d.candidate * scale:.2f}",
                               f"{d.change_pct:+.1f} % vs baseline" if d.change_pct is not None
                               else "n/a",
                               delta_color="inverse" if d.metric in {"wer", "cer"} else "normal")
                st.markdown("**Per language** (a French fine-tune should keep its other "
                            "languages)")
                st.dataframe(pd.DataFrame(result["languages"]), hide_index=True,
                             width="stretch")
                better, worse = st.columns(2)
                better.markdown(f"**Better** ({len(result['better'])} samples)")
                better.dataframe(pd.DataFrame(result["better"]), hide_index=True)
                worse.markdown(f"**Worse** ({len(result['worse'])} samples)")
                worse.dataframe(pd.DataFrame(result["worse"]), hide_index=True)

with sample_tab:
    if not runs:
        st.info("No run yet.")
    else:
        run_id = st.selectbox("Run", list(by_id), key="sample_run")
        rows = detailed_rows(by_id[run_id])
        ids = list(dict.fromkeys(r["id"] for r in rows))
        if ids:
            sample_id = st.selectbox("Sample", ids, key="sample_id")
            mine = [r for r in rows if r["id"] == sample_id]
            st.markdown(f"**Reference** — {mine[0]['reference']}")
            st.caption("yellow: substituted (hover for the reference word) · red struck: "
                       "deleted · green: inserted")
            for r in mine:
                if r.get("error"):
                    st.markdown(f"**{r['model']}** — ⚠️ {r['error']}")
                    continue
                wer = f"WER {100 * r['wer']:.1f} %" if r.get("wer") is not None else ""
                st.markdown(f"**{r['model']}** · {wer}<br>"
                            f"{highlight(r['reference'], r['hypothesis'], r.get('language'))}",
                            unsafe_allow_html=True)

with upload_tab:
    registry = asr_registry()
    upload = st.file_uploader(f"Audio file (≤ {MAX_UPLOAD_MB} MB)",
                              type=["wav", "flac", "mp3", "ogg", "m4a", "webm"],
                              key="cmp_upload")
    chosen = st.multiselect("Models", list(registry.models), key="upload_models",
                            default=["faster-whisper:tiny.en"],
                            format_func=lambda k: f"{k} · {need_gb(registry.get(k), device):.1f}"
                            " GB")
    c1, c2 = st.columns([3, 1])
    reference = c1.text_input("Reference text (optional, for WER)", key="upload_reference")
    language = c2.text_input("Language (optional)", key="upload_language",
                             placeholder="fr") or None
    if upload is not None:
        data = upload.getvalue()
        if len(data) > MAX_UPLOAD_MB * 2**20:
            st.error(f"{upload.name}: {len(data) / 2**20:.1f} MB is over {MAX_UPLOAD_MB} MB.")
        else:
            st.audio(data)
            if st.button("Transcribe", type="primary", disabled=not chosen):
                try:
                    audio = load_audio(data, name=upload.name)
                except AudioError as exc:
                    st.error(str(exc))
                else:
                    results = []
                    with st.status("Transcribing…", expanded=True) as status:
                        for i, result in enumerate(transcribe_clip(
                                audio, chosen, device, reference, language, registry)):
                            status.update(label=f"{result.model} done ({i + 1}/{len(chosen)})")
                            results.append(result)
                        status.update(label="Done", state="complete")
                    cols = st.columns(len(results))
                    for col, r in zip(cols, results, strict=True):
                        with col:
                            st.markdown(f"**{r.model}**")
                            if r.error:
                                st.error(r.error)
                                continue
                            st.write(r.text or "∅ (no speech recognised)")
                            facts = f"{r.seconds:.2f} s"
                            if r.rtfx:
                                facts += f" · RTFx {r.rtfx:.1f}"
                            if r.wer is not None:
                                facts += f" · WER {100 * r.wer:.1f} %"
                            st.caption(facts)
