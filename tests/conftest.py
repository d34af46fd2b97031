"""Test set-up: offline hub, a throwaway ERT_HOME, the repo's cache for converted weights."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_HOME = Path(tempfile.mkdtemp(prefix="ert-test-home-"))
os.environ["ERT_HOME"] = str(_HOME)
# Converted GGUF weights and checksum stamps are reused between test runs.
os.environ.setdefault("ERT_CACHE_DIR", str(REPO / ".ert" / "cache"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(REPO))

import core  # noqa: E402,F401  (thread caps before torch)

import pytest  # noqa: E402

ARTIFACTS = REPO / "test-artifacts"
# The head of every test registry: the bundled, offline tiny.en as the default model.
TINY_EN_REGISTRY = """default = "faster-whisper:tiny.en"
[models."faster-whisper:tiny.en"]
source = "bundled:faster-whisper-tiny.en"
languages = ["en"]
"""


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def smollm():
    """The real bundled LLM, loaded once for the whole session."""
    from core.llm.loader import load_llm
    from core.llm.registry import load_registry

    return load_llm(load_registry().get("smollm2-135m"))


@pytest.fixture(scope="session")
def embedder():
    """The real bundled all-MiniLM-L6-v2 embedder."""
    from core.rag.embeddings import load_embeddings

    return load_embeddings()
