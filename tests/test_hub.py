"""What is on this machine, read from the hub cache's folders; the hub asked only briefly."""

from __future__ import annotations

from core import hub

import json
import socket
import time
import urllib.request

import pytest


def _snapshot(cache, repo_id: str, files: dict[str, bytes], commit: str = "abc123"):
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    folder = repo / "snapshots" / commit
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_a_cached_model_is_on_this_machine_only_with_its_config_and_every_weight_file(
        tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    folder = _snapshot(tmp_path, "org/whole", {"config.json": b"{}", "model.safetensors": b"x"})
    _snapshot(tmp_path, "org/config-only", {"config.json": b"{}"})
    index = json.dumps({"weight_map": {"a": "part-1.safetensors", "b": "part-2.safetensors"}})
    _snapshot(tmp_path, "org/sharded", {"config.json": b"{}", "part-1.safetensors": b"x",
                                        "model.safetensors.index.json": index.encode()})
    assert hub.cached_snapshot("org/whole") == folder
    assert hub.on_this_machine("org/whole")
    assert hub.cached_file("org/whole", "config.json") == folder / "config.json"
    assert not hub.on_this_machine("org/config-only")  # an interrupted download
    assert not hub.on_this_machine("org/sharded")  # a shard missing
    assert not hub.on_this_machine("org/whole", revision="v2")  # another revision
    assert not hub.on_this_machine("org/never-downloaded")
    assert not hub.on_this_machine("/models/no-such-folder")
    assert hub.on_this_machine(str(tmp_path))  # a local folder


def test_offline_a_missing_model_fails_at_once_without_asking_the_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*_args, **_kwargs):
        raise AssertionError("the hub was asked although HF_HUB_OFFLINE=1")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(hub.ModelUnavailableError,
                       match=r"^org/model is not on this machine: not in the local cache, and "
                             r"the hub is unreachable \(HF_HUB_OFFLINE=1\); it needs a "
                             r"download of 0.15 GB"):
        hub.require_available("org/model", download="0.15 GB")


def test_a_hub_that_does_not_answer_counts_as_unreachable_after_the_probe_timeout(
        monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with socket.socket() as silent:  # accepts connections, never answers: a hub out of reach
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        monkeypatch.setenv("HF_ENDPOINT", url)
        began = time.monotonic()
        assert hub.unreachable(timeout=0.5) == f"{url} did not answer within 0.5 s"
        assert time.monotonic() - began < 5
        began = time.monotonic()
        assert hub.unreachable(timeout=0.5) is not None  # remembered: not asked again
        assert time.monotonic() - began < 0.1
