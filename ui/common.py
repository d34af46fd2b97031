"""Cached resources and the sidebar parts every page shows."""

from __future__ import annotations

import core  # noqa: F401  (thread caps before torch)
from core import threads
from core.hub import ModelUnavailableError
from core.llm.loader import LoadedLLM, gpu_unavailable_reason, load_llm
from core.llm.registry import LLMRegistry, load_registry
from core.rag.store import Collection

import contextlib
import importlib
import threading
import time
from typing import Any

import streamlit as st

GPU_STATE_KEY = "ert_gpu_mode"


@st.cache_resource(show_spinner=False)
def llm_registry() -> LLMRegistry:
    return load_registry()


@st.cache_resource(show_spinner=False, max_entries=2)
def shared_llm(key: str, device: str) -> LoadedLLM:
    """One loaded model per (model, device), shared by every browser session; on the CPU
    only its engine and tokenizer where they can be read (no fp32 model held)."""
    return load_llm(llm_registry().get(key), device=device, need_model=False)


@st.cache_resource(show_spinner=False)
def shared_embeddings() -> Any:
    from core.rag.embeddings import load_embeddings

    return load_embeddings()


@st.cache_resource(show_spinner=False)
def shared_collection(name: str) -> Collection:
    return Collection(name)


@st.cache_resource(show_spinner=False)
def gpu_reason() -> str | None:
    return gpu_unavailable_reason()


# What the Evaluation, Monitor and Compare pages import beyond the chat page (pandas for
# their tables, ERT's evaluation code): ~1 s of CPU that a page's first open paid (issue 27,
# `python -m bench page_open`). Imported once per server, in the background, a few seconds
# after the first page of any kind has been served.
WARM_MODULES = ("pandas", "pyarrow", "core.asr.registry", "core.evaluation.runner",
                "core.compare", "core.demo_data", "core.monitor")
WARM_DELAY_S = 3.0


@st.cache_resource(show_spinner=False)
def warm_up() -> threading.Thread:
    """Start importing :data:`WARM_MODULES` on a daemon thread (once per server)."""
    def work() -> None:
        time.sleep(WARM_DELAY_S)  # the page that started it renders first
        for name in WARM_MODULES:
            with contextlib.suppress(Exception):  # a page importing it says what is wrong
                importlib.import_module(name)

    thread = threading.Thread(target=work, name="ert-warm-up", daemon=True)
    thread.start()
    return thread


def gpu_toggle() -> str:
    """The sidebar's GPU-mode toggle, remembered across pages; returns the device. (Every
    page calls it: it also starts :func:`warm_up`.)"""
    warm_up()
    reason = gpu_reason()
    if reason:
        st.session_state[GPU_STATE_KEY] = False
    value = st.sidebar.toggle(
        "GPU mode", value=bool(st.session_state.get(GPU_STATE_KEY, False)),
        disabled=reason is not None, key="gpu_toggle_widget",
        help=f"Unavailable: {reason}" if reason else
        "Run models on the GPU in half precision (bf16 or fp16).")
    if reason:
        st.sidebar.caption(f"GPU mode off: {reason}.")
    st.session_state[GPU_STATE_KEY] = bool(value) and reason is None
    return "cuda" if st.session_state[GPU_STATE_KEY] else "cpu"


def thread_info() -> None:
    """The thread caps in force, so users can check the CPU notes were applied."""
    settings = threads.current()
    with st.sidebar.expander("CPU threads", expanded=False):
        st.caption(f"ERT_THREADS = {settings.threads} · torch intra-op "
                   f"{settings.torch_threads} · inter-op {settings.torch_interop_threads}")
        # Plain text: st.code made every page load Streamlit's 1.5 MB syntax highlighter,
        # ~0.4 s of each page's opening (issue 27, `python -m bench page_open`).
        st.text("\n".join(f"{k}={v}" for k, v in settings.env.items()))


def show_model_error(exc: ModelUnavailableError) -> None:
    st.error(str(exc), icon=":material/warning:")


@st.cache_resource(show_spinner=False)
def shared_sampler() -> Any:
    """One machine sampler for the whole server: its history survives page switches."""
    from core.monitor import Sampler

    return Sampler(interval=1.0).start()


@st.cache_resource(show_spinner=False)
def asr_registry() -> Any:
    from core.asr.registry import load_asr_registry

    return load_asr_registry()


def results_dir() -> str:
    """Where runs are written and read: the same folder as the CLI's (``ERT_RUNS_DIR``)."""
    from core import paths

    return str(paths.runs_dir())
