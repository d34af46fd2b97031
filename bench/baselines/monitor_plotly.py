"""The Monitor page as it was before issue 14, kept only as `bench app`'s baseline (its live
part; the recorded-statistics section it also had is not on the measured path).

Live machine monitor: CPU, RAM, swap and GPUs, the workbench and evaluation workers apart."""

import core  # noqa: F401  (thread caps first)
from core.monitor import over_threshold

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui.common import gpu_toggle, shared_sampler, thread_info

st.set_page_config(page_title="ERT — monitor", page_icon="🖥️", layout="wide")
gpu_toggle()
thread_info()
sampler = shared_sampler()
st.title("🖥️ Machine monitor")
interval = st.sidebar.select_slider("Refresh every (s)", [0.5, 1.0, 2.0, 5.0, 10.0], value=1.0,
                                    key="monitor_interval")
threshold = st.sidebar.slider("Warning threshold (%)", 50, 100, 85, key="monitor_threshold")
window = st.sidebar.select_slider("History shown (min)", [1, 5, 15], value=1)
MAX_POINTS = 120  # per series: more only costs redraw time


def _line(df: pd.DataFrame, columns: dict[str, str], title: str, unit: str = "%",
          limit: float | None = None) -> go.Figure:
    """A small line chart. Built with graph_objects: plotly.express costs ~10x more per
    redraw, which at a 1 s refresh was a third of a core."""
    fig = go.Figure([go.Scatter(x=df["time"], y=df[col], name=label, mode="lines")
                     for col, label in columns.items()])
    if limit is not None:
        fig.add_hline(y=limit, line_dash="dash", line_color="#dc2626")
        fig.update_yaxes(range=[0, 100])
    fig.update_layout(title=title, height=260, margin=dict(l=10, r=10, t=40, b=10),
                      yaxis_title=unit)
    return fig


@st.fragment(run_every=interval)
def live() -> None:
    history = sampler.snapshot()
    cutoff = history[-1].time - 60 * window if history else 0.0
    samples = [s for s in history if s.time >= cutoff]
    samples = samples[::max(1, len(samples) // MAX_POINTS)]
    if not samples:
        st.caption("Collecting the first samples…")
        return
    now = samples[-1]
    for warning in over_threshold(now, threshold):
        st.warning(f"⚠️ {warning} (threshold {threshold}%)")
    cols = st.columns(5)
    cols[0].metric("CPU", f"{now.cpu_pct:.0f}%")
    cols[1].metric("RAM", f"{now.ram_pct:.0f}%", f"{now.ram_used_gb:.1f} GB used",
                   delta_color="off")
    cols[2].metric("Swap", f"{now.swap_pct:.0f}%", f"{now.swap_used_gb:.1f} GB",
                   delta_color="off")
    cols[3].metric("ERT app", f"{now.app_cpu_pct:.0f}% CPU", f"{now.app_rss_gb:.2f} GB",
                   delta_color="off")
    cols[4].metric("Evaluation workers", f"{now.workers}",
                   f"{now.workers_cpu_pct:.0f}% CPU · {now.workers_rss_gb:.2f} GB",
                   delta_color="off")
    df = pd.DataFrame({"time": pd.to_datetime([s.time for s in samples], unit="s"),
                       "cpu": [s.cpu_pct for s in samples], "ram": [s.ram_pct for s in samples],
                       "swap": [s.swap_pct for s in samples],
                       "app_cpu": [s.app_cpu_pct for s in samples],
                       "workers_cpu": [s.workers_cpu_pct for s in samples],
                       "app_rss": [s.app_rss_gb for s in samples],
                       "workers_rss": [s.workers_rss_gb for s in samples]})
    for core_index in range(len(now.per_core_pct)):
        df[f"core{core_index}"] = [s.per_core_pct[core_index] if core_index < len(s.per_core_pct)
                                   else None for s in samples]
    left, right = st.columns(2)
    cores = {f"core{i}": f"core {i}" for i in range(len(now.per_core_pct))}
    left.plotly_chart(_line(df, {"cpu": "total", **cores}, "CPU %", limit=threshold),
                      key="cpu_chart")
    right.plotly_chart(_line(df, {"ram": "RAM", "swap": "swap"}, "Memory %", limit=threshold),
                       key="mem_chart")
    left.plotly_chart(_line(df, {"app_cpu": "ERT app", "workers_cpu": "evaluation workers"},
                            "Processes: CPU % (100 = one core)"), key="proc_cpu_chart")
    right.plotly_chart(_line(df, {"app_rss": "ERT app", "workers_rss": "evaluation workers"},
                             "Processes: resident memory", unit="GB"), key="proc_mem_chart")
    st.subheader("GPUs")
    if not now.gpus:
        st.info("No GPU visible (no NVIDIA driver or NVML on this machine): GPU charts are "
                "not shown.")
        return
    for gpu in now.gpus:
        i = gpu["index"]
        gdf = pd.DataFrame({
            "time": pd.to_datetime([s.time for s in samples], unit="s"),
            "util": [s.gpus[i]["utilization_pct"] if len(s.gpus) > i else None for s in samples],
            "mem": [100 * s.gpus[i]["memory_used_gb"] / s.gpus[i]["memory_total_gb"]
                    if len(s.gpus) > i else None for s in samples]})
        st.caption(f"GPU{i} {gpu['name']} · {gpu['memory_used_gb']:.1f}/"
                   f"{gpu['memory_total_gb']:.1f} GB · {gpu['temperature_c'] or '—'} °C · "
                   f"{gpu['power_w'] or '—'} W")
        st.plotly_chart(_line(gdf, {"util": "utilisation", "mem": "memory"}, f"GPU{i} %",
                              limit=threshold), key=f"gpu_chart_{i}")


live()
