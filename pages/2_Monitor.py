"""Live machine monitor: CPU, RAM, swap and GPUs, the workbench and evaluation workers apart.

The live part is one custom component (``ui/monitor_chart.py``): the browser appends
the new samples and asks for more only while visible.
"""

import core  # noqa: F401  (thread caps first)
from core.evaluation import runner
from core.evaluation.run_dir import RunDir
from core.evaluation.summary import worker_row

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from ui.common import gpu_toggle, results_dir, shared_sampler, thread_info
from ui.monitor_chart import monitor_chart

st.set_page_config(page_title="ERT — monitor", page_icon=":material/monitor_heart:",
                   layout="wide")
gpu_toggle()
thread_info()
sampler = shared_sampler()
st.title("Machine monitor")
interval = st.sidebar.select_slider("Refresh every (s)", [0.5, 1.0, 2.0, 5.0, 10.0], value=1.0,
                                    key="monitor_interval")
threshold = st.sidebar.slider("Warning threshold (%)", 50, 100, 85, key="monitor_threshold")
window = st.sidebar.select_slider("History shown (min)", [1, 5, 15], value=1)


@st.fragment
def live() -> None:
    """Reruns alone when the chart asks for new samples (only while the tab is visible)."""
    monitor_chart(sampler, interval, 60.0 * window, threshold)


live()

active = runner.active_run(Path(results_dir()))
cluster = RunDir(active).read_cluster() if active else {}
if cluster.get("nodes"):  # a Ray run is going: the cluster's nodes, as its runner last saw them
    st.subheader("Cluster")
    st.caption(f"Ray nodes of run {active.name}, as of "
               f"{pd.Timestamp(cluster['time'], unit='s'):%H:%M:%S} UTC (reload to refresh)")
    st.dataframe(pd.DataFrame(cluster["nodes"]).rename(columns={
        "cpus": "CPUs", "memory_gb": "memory GB", "gpus": "GPUs"}), hide_index=True)
workers = RunDir(active).read_status().get("shards", []) if active else []
if workers:  # data-parallel workers (here or on a cluster): each one's host, as it last saw it
    st.subheader("Workers")
    st.caption(f"Run {active.name}: the load of each worker's host at its last step "
               "(reload to refresh)")
    st.dataframe(pd.DataFrame([worker_row(w) for w in workers]), hide_index=True,
                 placeholder="—")

st.subheader("Recorded memory statistics")
files = sorted(Path(results_dir()).glob("*/memory_stats_*.json"), reverse=True)
if not files:
    st.caption("No memory_stats_*.json yet: they are written by evaluations and `ert monitor`.")
else:
    # None until one is picked: plotting a file (Plotly, in the server and in the browser)
    # took most of the page's opening (issue 27), and the live chart is what it opens for.
    picked = st.selectbox("File", files, format_func=lambda p: f"{p.parent.name}/{p.name}",
                          index=None, placeholder=f"Pick one of {len(files)} files to plot",
                          key="monitor_stats_file")
if files and picked is not None:
    data = json.loads(Path(picked).read_text())
    batches = data.get("batches") or {"": data}
    rows = [{"time": pd.to_datetime(s["time"], unit="s"), "batch": name or "monitor",
             "RAM %": s["ram_pct"], "process GB": s["process_rss_gb"]}
            for name, stats in batches.items() for s in stats.get("samples", [])]
    if len(rows) >= 2:
        import plotly.express as px  # only for a picked file

        frame = pd.DataFrame(rows)
        st.plotly_chart(px.line(frame, x="time", y="RAM %", color="batch", height=260),
                        key="stats_ram")
        st.plotly_chart(px.line(frame, x="time", y="process GB", color="batch", height=260),
                        key="stats_rss")
    elif rows:  # one point draws empty axes: show the values instead
        st.caption("One sample in this file (the run was shorter than two log intervals): "
                   "its values, as there is no line to draw.")
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    else:
        st.caption("This file has no samples (the run was shorter than the log interval).")
