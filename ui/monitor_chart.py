"""The Monitor page's live chart: a Streamlit custom component (v2) over uPlot.

Why: redrawing four Plotly figures from the whole history every second cost
the server 21-41 % of a core and the browser 44 % (BENCHMARKS.md). Here the
browser keeps its samples and Python sends only the new ones, a few hundred
bytes a tick; the browser asks for them (a ``tick`` trigger) only while the
page is visible, so a hidden or closed tab costs the server nothing.
"""

from __future__ import annotations

from core.monitor import Sampler, columns, latest

from pathlib import Path
from typing import Any

import streamlit as st

KEY = "monitor_chart"
_HERE = Path(__file__).parent
_CSS = """
.ert-monitor { font-family: var(--st-font, sans-serif); }
.ert-tiles { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; margin: 4px 0 12px; }
.ert-tile-label { font-size: 0.85rem; opacity: 0.75; }
.ert-tile-value { font-size: 1.9rem; line-height: 1.2; }
.ert-tile-detail { font-size: 0.8rem; opacity: 0.75; min-height: 1em; }
.ert-grid { display: flex; flex-wrap: wrap; gap: 16px; }
.ert-chart-title { font-weight: 600; font-size: 0.9rem; margin: 4px 0; }
.ert-warning { background: #fef3c7; color: #92400e; padding: 6px 10px; border-radius: 6px;
               margin-bottom: 6px; }
.ert-gpu, .ert-gpu-none { font-size: 0.85rem; opacity: 0.85; margin-top: 8px; }
"""


@st.cache_resource(show_spinner=False)
def _component() -> Any:
    return st.components.v2.component(
        "ert_monitor_chart", html="", css=_CSS, js=(_HERE / "monitor_chart.js").read_text())


def payload(sampler: Sampler, have: int, interval: float, window_s: float,
            threshold: float, tick: int) -> dict[str, Any]:
    """What the browser needs: the samples after ``have`` (all of them, with ``reset``,
    when it has none or has fallen behind the history), the newest figures, the settings."""
    seq, samples = sampler.since(have)
    reset = have < 0 or seq - have > len(samples)
    if reset:
        seq, samples = sampler.since(-1)
    newest = sampler.snapshot()[-1:] if not samples else samples[-1:]
    return {
        "seq": seq, "reset": reset, "tick": tick, "columns": columns(samples) if samples else None,
        "latest": latest(newest[0], threshold) if newest else None,
        "interval": interval, "window": window_s, "threshold": threshold,
        "keep": sampler.interval * (sampler.history.maxlen or 900),
    }


def monitor_chart(sampler: Sampler, interval: float, window_s: float, threshold: float) -> None:
    """Mount (or update) the chart with what the browser does not have yet."""
    state = st.session_state.get(KEY) or {}
    tick = state.get("tick") if hasattr(state, "get") else None
    have = int(tick["have"]) if isinstance(tick, dict) and tick.get("have") is not None else -1
    n = int(tick["n"]) if isinstance(tick, dict) and tick.get("n") is not None else 0
    data = payload(sampler, have, interval, window_s, threshold, n)
    _component()(data=data, key=KEY, on_tick_change=lambda: None)
