"""The processes ERT starts keep compiled bytecode where the environment writes none."""

from __future__ import annotations

from core.bytecode import FOLDER, child_environment

import importlib.util
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

IMAGE = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}  # as container images set it


def _cached(prefix: Path, source: Path) -> Path:
    """Where a process with ``prefix`` as its bytecode cache keeps ``source``'s."""
    name = Path(importlib.util.cache_from_source(str(source))).name
    return prefix / source.resolve().relative_to("/").parent / name


def test_children_keep_bytecode_in_erts_cache_where_the_environment_writes_none(
        tmp_path, monkeypatch):
    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))
    env = child_environment(IMAGE)
    prefix = tmp_path / "cache" / FOLDER
    assert env["PYTHONPYCACHEPREFIX"] == str(prefix) and env["PYTHONDONTWRITEBYTECODE"] == ""
    source = REPO / "core" / "evaluation" / "claims.py"
    code = "import core.evaluation.claims as m; print(m.__cached__)"
    subprocess.run([sys.executable, "-c", code], env=IMAGE, cwd=REPO, check=True)
    assert not prefix.exists() or not any(prefix.rglob("claims.*.pyc"))  # the image's way
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True,
                          capture_output=True, text=True)
    assert _cached(prefix, source).is_file()
    assert done.stdout.strip() == str(_cached(prefix, source))  # where imports look first


def test_an_environment_that_writes_bytecode_is_left_as_it_is():
    usual = {"PATH": "/usr/bin"}
    assert child_environment(usual) == usual


def test_a_bytecode_prefix_the_user_chose_is_kept():
    chosen = {**IMAGE, "PYTHONPYCACHEPREFIX": "/somewhere/pyc"}
    assert child_environment(chosen) == chosen


def test_opting_out_leaves_the_environment_as_it_is():
    assert child_environment({**IMAGE, "ERT_BYTECODE_CACHE": "0"}) == {
        **IMAGE, "ERT_BYTECODE_CACHE": "0"}


def test_a_cache_that_cannot_be_written_leaves_the_environment_as_it_is(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("ERT_CACHE_DIR", str(blocked))
    assert child_environment(IMAGE) == IMAGE  # the worker still starts, compiling as before
