"""Draw recorded monitor samples with the Monitor's own chart component.

``streamlit run scripts/replay_monitor.py`` (``ERT_MONITOR_REPLAY=FILE.json`` picks the file;
default: the samples recorded on two H200 GPUs by ``scripts/record_gpu_monitor.py``). Used to
check the GPU panel where there is no GPU: the browser test screenshots it.
"""

import core  # noqa: F401  (thread caps first)
from core.monitor import MonitorSample, Sampler

import json
import os
from pathlib import Path

import streamlit as st

from ui.monitor_chart import monitor_chart

DEFAULT = Path(__file__).parent / "data" / "gpu-monitor-2xH200.json"


@st.cache_resource(show_spinner=False)
def replayed(path: str) -> Sampler:
    sampler = Sampler(interval=0.5)
    for sample in json.loads(Path(path).read_text()):
        sampler.add(MonitorSample(**sample))
    return sampler


st.set_page_config(page_title="ERT — monitor replay", layout="wide")
source = os.environ.get("ERT_MONITOR_REPLAY", str(DEFAULT))
st.title("🖥️ Machine monitor (replay)")
st.caption(f"Recorded samples: {Path(source).name}")
monitor_chart(replayed(source), interval=1.0, window_s=60.0, threshold=85)
