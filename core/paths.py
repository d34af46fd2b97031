"""Where ERT keeps its files. Every location can be moved by an environment variable.

``ERT_HOME`` (default ``<repo>/.ert``) holds caches and RAG collections;
``ERT_CACHE_DIR`` moves only the caches (converted weights, verified
checksums), so tests can use a fresh home and still reuse a converted model;
``ERT_RUNS_DIR`` moves the evaluation runs.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(os.environ.get("ERT_CONFIG_DIR", REPO_ROOT / "configs"))


def home() -> Path:
    """The root of ERT's writable state."""
    return Path(os.environ.get("ERT_HOME", REPO_ROOT / ".ert")).expanduser()


def cache_dir(*parts: str) -> Path:
    """A folder under the cache (``ERT_CACHE_DIR``, default ``$ERT_HOME/cache``)."""
    root = Path(os.environ.get("ERT_CACHE_DIR") or home() / "cache").expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def collections_dir() -> Path:
    """Where RAG collections persist between restarts."""
    path = home() / "collections"
    path.mkdir(parents=True, exist_ok=True)
    return path


def conversations_dir() -> Path:
    """Where the chat page keeps each browser session's conversation across reloads."""
    path = home() / "conversations"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Where evaluation runs are written and read, by the CLI and the pages alike
    (``ERT_RUNS_DIR``, default ``<repo>/runs``)."""
    return Path(os.environ.get("ERT_RUNS_DIR") or REPO_ROOT / "runs").expanduser()


def config_file(name: str) -> Path:
    """A user-editable registry file: ``ERT_CONFIG_DIR`` wins over the repo's ``configs/``."""
    return Path(os.environ.get("ERT_CONFIG_DIR", CONFIG_DIR)) / name
