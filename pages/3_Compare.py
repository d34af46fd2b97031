"""Compare runs and models, a baseline against a fine-tune, samples, and an uploaded clip."""

import core  # noqa: F401  (thread caps first)
from core.analysis import hallucination_rows, languages_table
from core.audio import AudioError, load_audio
from core.compare import (
    LABELS,
    LOWER_IS_BETTER,
    METRICS,
    PERCENT,
    common_samples,
    compare_models,
    detailed_rows,
    display_rows,
    highlight,
    language_rows,
    list_runs,
    model_rows,
    normalizer_warning,
    rescore_on,
    samples_warning,
    scored_samples,
    speed_labels,
    to_csv,
    with_figures,
)
from core.condition_views import (
    TABLE_COLUMNS,
    Heard,
    clips,
    condition_rows,
    heard,
    run_conditions,
    transcripts,
)
from core.datasets import dataset_label
from core.evaluation.condition_chart import draw_condition_chart
from core.evaluation.planner import model_option
from core.failure_views import run_report, slice_chart, slice_columns, slice_rows
from core.metrics import QualityBand
from core.phrasing import plural
from core.transcribe import transcribe_clip

from pathlib import Path
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from ui.common import asr_registry, gpu_toggle, results_dir, thread_info

st.set_page_config(page_title="ERT — compare", page_icon=":material/balance:", layout="wide")
device = gpu_toggle()
thread_info()
st.title("Compare")
BANDS = ("excellent < 10 % · good 10–20 % · acceptable 20–30 % · to improve > 30 %")
# The runs table: what to compare first, then how it was measured (long columns last).
TABLE = ("model", "run", "status", "wer", "wer_ci", "scored", "cer", "bleu", "chrf", "rtfx",
         "success_rate", "peak_rss_gb", "mean_latency_s", "mean_compute_s", "rtfx_end_to_end",
         "band", "samples", "timed", "cached", "failures", "skipped", "decoding", "batch_size")
CHARTS = ("wer", "cer", "bleu", "rtfx", "success_rate", "peak_rss_gb")
X_LABEL = "model · run"
number = st.column_config.NumberColumn
FORMATS = {"WER %": number(format="%.1f"), "CER %": number(format="%.1f"),
           "BLEU": number(format="%.1f"), "chrF": number(format="%.1f"),
           "success %": number(format="%.0f"), "peak RAM GB": number(format="%.2f"),
           "latency s": number(format="%.2f"), "compute s / clip": number(format="%.3f"),
           "RTFx end to end": number(format="%.1f"), "batch size": number(format="%d"),
           "baseline WER %": number(format="%.1f"), "candidate WER %": number(format="%.1f"),
           "change % (relative)": number(format="%+.1f"),
           "WER change (points)": number(format="%+.1f")}

runs_tab, ab_tab, where_tab, robust_tab, sample_tab, upload_tab = st.tabs(
    ["Runs", "Baseline vs candidate", "Where models fail", "Robustness", "Per sample",
     "Upload audio"])
runs = list_runs(results_dir())
by_id = {r.run_id: r for r in runs}


def pick_run(key: str) -> tuple[str, list[dict[str, Any]]] | None:
    """The run a tab looks at and its scored samples; None, said, while there is none."""
    if not runs:
        st.info("No run yet.")
        return None
    run_id = st.selectbox("Run", list(by_id), key=key)
    return run_id, detailed_rows(by_id[run_id])


with runs_tab:
    if not runs:
        st.info("No finished run yet: start one on the Evaluation page or with `ert evaluate`.")
    else:
        picked = st.multiselect("Runs", list(by_id), default=list(by_id)[:1], key="cmp_runs",
                                format_func=lambda r: f"{r} · {dataset_label(by_id[r].dataset)}"
                                f" · {plural(by_id[r].samples, 'sample')}")
        chosen_runs = [by_id[r] for r in picked]
        warning = normalizer_warning(chosen_runs)
        if warning:
            st.warning(warning)
        rows = model_rows(chosen_runs)  # fractions, as in the result files and the CSV
        table = pd.DataFrame(rows)
        if not table.empty:
            models = st.multiselect("Models", sorted(table["model"].unique()),
                                    default=sorted(table["model"].unique()), key="cmp_models")
            scored = scored_samples(chosen_runs, models)
            different = samples_warning(scored)
            by_language = None  # each model's own per-language figures
            if different:
                st.warning(different)
                common = common_samples(scored)
                if st.checkbox(f"On the common samples ({plural(len(common), 'sample')})",
                               key="cmp_common", disabled=not common,
                               help="Score every model again on the samples all of them "
                                    "transcribed: WER, its interval, CER, BLEU and chrF. "
                                    "Speed, memory and success stay the whole run's."):
                    rows, by_language = rescore_on(rows, scored, common)
                    table = pd.DataFrame(rows)
            table = table[table["model"].isin(models)]
            bands = st.multiselect("WER band", [b.value for b in QualityBand],
                                   default=[b.value for b in QualityBand], help=BANDS)
            table = table[table["band"].isin(bands) | table["band"].isna()]
            sort_by = st.selectbox("Sort by", METRICS, key="cmp_sort",
                                   format_func=lambda m: LABELS[m])
            table = table.sort_values(sort_by, ascending=sort_by in LOWER_IS_BETTER)
            kept = [rows[i] for i in table.index]  # the rows as read, in the table's order
            speeds = speed_labels(chosen_runs)
            one_run = len(chosen_runs) == 1  # then the picker names it: no run column
            shown = display_rows(
                [{**r, "rtfx": speeds.get((r["run"], r["model"]), "—")} for r in kept],
                [c for c in with_figures(TABLE) if not (one_run and c == "run")])
            st.dataframe(pd.DataFrame(shown), hide_index=True, width="stretch",
                         placeholder="—", column_config=FORMATS)
            st.caption("WER and CER are corpus-level, in percent, over the samples in "
                       "`scored on`; the WER interval is the 95 % "
                       "interval of a bootstrap over the samples. RTFx: seconds of audio per "
                       "second of model compute, on the clips transcribed in that run (not "
                       "those from the cache). `decoding` says whether clips were decoded "
                       "alone (independent) or packed together (speed mode).")
            st.caption(f"WER bands: {BANDS}. The CSV export holds fractions (0.123 = 12.3 %) "
                       "under the names of the consolidated results JSON.")
            st.download_button("Export CSV", to_csv(kept), file_name="ert_comparison.csv",
                               mime="text/csv")
            chart = table.copy()  # numbers even where every value is missing; percent
            for metric in {*CHARTS, "wer_low", "wer_high"}:
                chart[metric] = pd.to_numeric(chart[metric], errors="coerce") * (
                    100 if metric in PERCENT else 1)
            chart[X_LABEL] = chart["model"] + " · " + chart["run"].str[-4:]
            chart["wer_plus"] = chart["wer_high"] - chart["wer"]
            chart["wer_minus"] = chart["wer"] - chart["wer_low"]
            cols = st.columns(3)
            for col, metric in zip(cols * 2, CHARTS, strict=True):
                present = chart.dropna(subset=[metric])  # a missing value is no bar, not 0
                with col:
                    if present.empty:
                        st.markdown(f"**{LABELS[metric]}**")
                    else:
                        bars = {"error_y": "wer_plus", "error_y_minus": "wer_minus"} \
                            if metric == "wer" else {}
                        st.plotly_chart(px.bar(
                            present, x=X_LABEL, y=metric, color="model", height=280,
                            title=LABELS[metric], labels={metric: LABELS[metric]}, **bars
                        ).update_layout(showlegend=False), key=f"bar_{metric}")
                    left_out = [f"{r[X_LABEL]} {speeds.get((r['run'], r['model']), '—')}"
                                if metric == "rtfx" else f"{r[X_LABEL]} (not recorded)"
                                for _, r in chart.iterrows() if pd.isna(r[metric])]
                    if left_out:
                        st.caption(f"No {LABELS[metric]} bar for " + "; ".join(left_out))
            by_language = [r for r in (language_rows(chosen_runs) if by_language is None
                                       else by_language) if r["model"] in models]
            if by_language:
                st.markdown("**Per language** (models scored in more than one language)")
                st.dataframe(pd.DataFrame(display_rows(by_language, [
                    c for c in ("model", "run", "language", "samples", "wer", "wer_ci", "cer")
                    if not (one_run and c == "run")])),
                    hide_index=True, width="stretch", placeholder="—", column_config=FORMATS)

with ab_tab:
    if (picked := pick_run("ab_run")) is not None:
        run_id, rows = picked
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
                    percent = d.metric in PERCENT
                    value = (f"{100 * d.candidate:.1f} %" if percent else f"{d.candidate:.1f}"
                             ) if d.candidate is not None else "—"
                    col.metric(LABELS[d.metric].removesuffix(" %"), value,
                               f"{d.change_pct:+.1f} % relative to the baseline"
                               if d.change_pct is not None else "—",
                               delta_color="inverse" if d.metric in LOWER_IS_BETTER
                               else "normal")
                st.markdown("**Per language** (a French fine-tune should keep its other "
                            "languages)")
                st.dataframe(pd.DataFrame(display_rows(result["languages"], [
                    "language", "samples", "baseline_wer", "candidate_wer", "change_pct",
                    "verdict", "baseline_band", "candidate_band"])), hide_index=True,
                    width="stretch", placeholder="—", column_config=FORMATS)
                moved_columns = ["id", "language", "reference", "baseline", "candidate",
                                 "baseline_wer", "candidate_wer", "delta"]
                better, worse = st.columns(2)
                for col, name in ((better, "better"), (worse, "worse")):
                    col.markdown(f"**{name.capitalize()}** "
                                 f"({plural(len(result[name]), 'sample')})")
                    col.dataframe(pd.DataFrame(display_rows(result[name], moved_columns)),
                                  hide_index=True, placeholder="—", column_config=FORMATS)

with where_tab:
    if (picked := pick_run("where_run")) is not None:
        run_id, rows = picked
        names = sorted({r["model"] for r in rows})
        c1, c2 = st.columns(2)
        column = c1.selectbox("Slice by", slice_columns(rows), key="where_slice",
                              help="Clip length, language, dataset, and any column of the "
                                   "manifest with repeated values (accent, gender, speaker…)")
        base = c2.selectbox("Baseline", ["(none)", *names], key="where_base")
        baseline = None if base == "(none)" else base
        report = run_report(by_id[run_id].path, [column], baseline)
        sliced = slice_rows(report, column)
        if not sliced:
            st.info(f"Every sample of this run has the same {column}, or none: nothing to "
                    "slice.")
        else:
            st.dataframe(pd.DataFrame(display_rows(sliced, [
                "slice", "model", "samples", "wer", "wer_ci", "cer", "delta_wer", "verdict"])),
                hide_index=True, width="stretch", placeholder="—", column_config=FORMATS)
            st.altair_chart(slice_chart(sliced), width="stretch")
            if baseline:
                st.caption("Verdicts per slice come from a paired bootstrap; with many slices "
                           "some look significant by chance, so a verdict holds only if it "
                           "survives Holm's adjustment over every slice of the table.")
        table = languages_table(report, baseline) if baseline else []
        if table:
            st.markdown("**Multilingual preserved** — each language, baseline against "
                        "candidate")
            st.dataframe(pd.DataFrame(display_rows(table, [
                "language", "candidate", "samples", "baseline_wer", "candidate_wer",
                "delta_wer", "verdict"])), hide_index=True, width="stretch", placeholder="—",
                column_config=FORMATS)
        st.markdown("**Hallucinations** — samples flagged, and WER without them")
        st.dataframe(pd.DataFrame(hallucination_rows(report)), hide_index=True,
                     width="stretch", placeholder="—")
        st.markdown("**Error anatomy** — the words each model gets wrong most often")
        for model, anatomy in report["errors"].items():
            with st.expander(f"{model}: {anatomy['errors']} word errors"):
                cols = st.columns(3)
                for col, kind in zip(cols, ("substitutions", "deletions", "insertions"),
                                     strict=True):
                    col.markdown(f"*{kind}*")
                    col.dataframe(pd.DataFrame([{
                        "word": f"{c['ref']} → {c['hyp']}" if kind == "substitutions"
                        else c["ref"] or c["hyp"], "count": c["count"],
                        "share %": round(100 * c["share"], 1)} for c in anatomy[kind]]),
                        hide_index=True, placeholder="—")
                changed = report["changed_words"].get(model)
                if changed:
                    st.markdown(f"*Words whose errors changed most against {baseline}*")
                    st.dataframe(pd.DataFrame(changed), hide_index=True)



@st.cache_data(show_spinner="Making the clip under each condition…", max_entries=8)
def heard_clip(run: str, clip: str) -> list[Heard]:
    """What the models heard (the same bytes every time: conditions are seeded per clip)."""
    return heard(Path(run), clip)


with robust_tab:
    if (picked := pick_run("cond_run")) is not None:
        run_id, rows = picked
        if not run_conditions(rows):
            st.info("This run heard its clips as they are. A run with robustness conditions "
                    "(Evaluation page: Conditions; or `ert evaluate --conditions "
                    "clean,noise:snr=10,telephone`) shows here how each model's WER "
                    "degrades, and lets you listen to what the models heard.")
        else:
            names = sorted({r["model"] for r in rows})
            base = st.selectbox("Baseline", ["(none)", *names], key="cond_base")
            report = run_report(by_id[run_id].path, [], None if base == "(none)" else base)
            conditions = report.get("conditions") or {}
            st.dataframe(pd.DataFrame(display_rows(condition_rows(conditions),
                                                   TABLE_COLUMNS)),
                         hide_index=True, width="stretch", placeholder="—",
                         column_config=FORMATS)
            for summary in conditions.get("models", {}).values():
                st.caption(summary["line"])
            figure = draw_condition_chart(run_id, conditions)
            if figure is not None:
                st.pyplot(figure)
            st.markdown("**Listen to what the models heard**")
            clip = st.selectbox("Clip", clips(rows), key="cond_clip")
            said_by = transcripts(rows, clip)
            for item in heard_clip(str(by_id[run_id].path), clip):
                sound, said = st.columns([2, 3])
                sound.markdown(f"**{item.condition}**")
                if item.wav is not None:
                    sound.audio(item.wav, format="audio/wav")
                else:
                    sound.warning(item.error)
                for r in said_by.get(item.condition, []):
                    wer = f" · WER {100 * r['wer']:.1f} %" if r.get("wer") is not None else ""
                    text = f"⚠ {r['error']}" if r.get("error") else (r["hypothesis"] or "∅")
                    said.markdown(f"**{r['model']}**{wer} — {text}")

with sample_tab:
    if (picked := pick_run("sample_run")) is not None:
        run_id, rows = picked
        ids = list(dict.fromkeys(r["id"] for r in rows))
        if ids:
            sample_id = st.selectbox("Sample", ids, key="sample_id")
            mine = [r for r in rows if r["id"] == sample_id]
            st.markdown(f"**Reference** — {mine[0]['reference']}")
            st.caption("yellow: substituted (hover for the reference word) · red struck: "
                       "deleted · green: inserted")
            for r in mine:
                if r.get("error"):
                    st.markdown(f"**{r['model']}** — ⚠ {r['error']}")
                    continue
                wer = f"WER {100 * r['wer']:.1f} %" if r.get("wer") is not None else ""
                st.markdown(f"**{r['model']}** · {wer}<br>"
                            f"{highlight(r['reference'], r['hypothesis'], r.get('language'))}",
                            unsafe_allow_html=True)

with upload_tab:
    registry = asr_registry()
    # The size limit is Streamlit's own (server.maxUploadSize, .streamlit/config.toml): its
    # uploader states it and refuses larger files, so the page states no second one.
    upload = st.file_uploader("Audio file",
                              type=["wav", "flac", "mp3", "ogg", "m4a", "webm"],
                              key="cmp_upload")
    chosen = st.multiselect("Models", list(registry.models), key="upload_models",
                            default=["faster-whisper:tiny.en"],
                            format_func=lambda k: model_option(registry.get(k), device))
    c1, c2 = st.columns([3, 1])
    reference = c1.text_input("Reference text (optional, for WER)", key="upload_reference")
    language = c2.text_input("Language (optional)", key="upload_language",
                             placeholder="fr") or None
    no_speech = st.checkbox(
        "No-speech filter", key="upload_no_speech",
        help="faster-whisper: when the VAD finds no speech in the clip, it is not decoded "
             "(Whisper writes words such as 'you' on silence). Off by default: it changes "
             "what is measured.")
    if upload is not None:
        data = upload.getvalue()
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
                            audio, chosen, device, reference, language, registry,
                            no_speech_filter=no_speech)):
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
