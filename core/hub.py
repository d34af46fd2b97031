"""Hugging Face hub access: what is on this machine, whether the hub answers, and its
failures turned into one clear, stack-trace-free message.

Users have the hub; this machine and CI may not. A model that is neither in
the local cache nor reachable must say exactly that, for the chat and the
ASR backends alike, and say it at once: the hub client's own retries take
~140 s per model with no route to the hub (issue 27). So what is on this
machine is read from the cache's folders (no network, no ``huggingface_hub``
import), and the hub is asked only with a bounded probe.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_SECONDS = 3.0  # how long the hub may take to answer before it counts as unreachable
PROBE_MEMORY_SECONDS = 60.0  # an answer (or its absence) is reused this long
# What a snapshot must hold to load without the hub: its config and weights in one of the
# formats transformers or CTranslate2 read (an index counts with every shard it names).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json", "model.bin")


class ModelUnavailableError(RuntimeError):
    """A model could not be loaded; the message is meant for the user as is."""


def is_local(source: str) -> bool:
    return Path(source).expanduser().exists()


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}


def looks_local(source: str) -> bool:
    """Whether ``source`` names a folder rather than a hub id ("/models/x", "~/x", "./x")."""
    return source.startswith(("/", "~", "."))


def cache_dir() -> Path:
    """The hub cache, as ``huggingface_hub`` finds it (read at call time: HF_HUB_CACHE,
    then HF_HOME/hub, then XDG_CACHE_HOME/huggingface/hub, then ~/.cache/huggingface/hub)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def cached_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The cache's snapshot folder of model ``repo_id`` at ``revision`` (a branch, tag or
    commit; default main), or None: read from the cache's folders, no network call."""
    repo = cache_dir() / f"models--{repo_id.replace('/', '--')}"
    wanted = revision or "main"
    ref = repo / "refs" / wanted
    try:
        commit = ref.read_text().strip() if ref.is_file() else wanted
    except OSError:
        return None
    folder = repo / "snapshots" / commit
    return folder if folder.is_dir() else None


def cached_file(repo_id: str, filename: str, revision: str | None = None) -> Path | None:
    """One file of a cached snapshot, or None (see :func:`cached_snapshot`)."""
    folder = cached_snapshot(repo_id, revision)
    path = folder / filename if folder else None
    return path if path is not None and path.is_file() else None


def complete(folder: Path) -> bool:
    """Whether ``folder`` (a snapshot or a local model) holds a config and whole weights."""
    if not (folder / "config.json").is_file():
        return False
    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if not name.endswith(".index.json"):
            return True
        try:
            shards = set(json.loads(path.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, AttributeError):
            continue
        if all((folder / shard).is_file() for shard in shards):
            return True
    return False


def on_this_machine(source: str, revision: str | None = None) -> bool:
    """Whether the model ``source`` (a folder or a hub id) can load without the hub."""
    if is_local(source):
        return True
    if looks_local(source):
        return False
    folder = cached_snapshot(source, revision)
    return folder is not None and complete(folder)


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


_probes: dict[str, tuple[float, str | None]] = {}
_probe_lock = threading.Lock()


def unreachable(timeout: float = PROBE_SECONDS) -> str | None:
    """Why the hub cannot be used now ("HF_HUB_OFFLINE=1", "https://… did not answer within
    3 s"), or None when it answers. Offline, no network call; otherwise one request bounded
    by ``timeout``, its outcome reused for :data:`PROBE_MEMORY_SECONDS`."""
    if offline():
        return "HF_HUB_OFFLINE=1"
    url = endpoint()
    with _probe_lock:
        known = _probes.get(url)
        if known is not None and time.monotonic() - known[0] < PROBE_MEMORY_SECONDS:
            return known[1]
        try:
            request = urllib.request.Request(f"{url}/api/models?limit=1", method="HEAD")
            urllib.request.urlopen(request, timeout=timeout).close()
            why = None
        except urllib.error.HTTPError:  # it answered: reachable, whatever it said
            why = None
        except TimeoutError:
            why = f"{url} did not answer within {timeout:g} s"
        except OSError as exc:  # URLError included: refused, no route, no name
            reason = getattr(exc, "reason", exc)
            why = (f"{url} did not answer within {timeout:g} s"
                   if isinstance(reason, TimeoutError) else f"{url} cannot be reached ({reason})")
        _probes[url] = (time.monotonic(), why)
        return why


def require_available(source: str, revision: str | None = None,
                      download: str = "") -> None:
    """Raise :class:`ModelUnavailableError` at once for a model that is not on this machine
    and cannot be downloaded now; ``download`` says what it would fetch ("about 0.15 GB")."""
    if on_this_machine(source, revision):
        return
    if looks_local(source):
        raise ModelUnavailableError(f"{source} is not on this machine: no such folder")
    why = unreachable()
    if why is None:
        return  # the hub answers: the load downloads it
    size = f"; it needs a download of {download}" if download else ""
    raise ModelUnavailableError(
        f"{source} is not on this machine: not in the local cache, and the hub is "
        f"unreachable ({why}){size} (download it once where the hub is reachable, or "
        "point the registry at a local folder)")


@contextmanager
def friendly_hub_errors(model_id: str) -> Iterator[None]:
    """Re-raise loading errors of ``model_id`` as :class:`ModelUnavailableError`."""
    try:
        yield
    except ModelUnavailableError:
        raise
    except (OSError, ValueError, ImportError) as exc:
        text = str(exc)
        if is_local(model_id):
            raise ModelUnavailableError(f"cannot load the local model {model_id}: {text}") from exc
        network_words = ("connect", "offline", "resolve", "network", "Max retries",
                         "couldn't", "cannot find the requested files", "not a local folder",
                         "does not appear to have", "Temporary failure", "is not a valid model")
        if any(word.lower() in text.lower() for word in network_words):
            raise ModelUnavailableError(
                f"{model_id} is not in the local cache, and the hub is unreachable "
                "(download it once where the hub is reachable, or point the registry at a "
                "local folder)"
            ) from exc
        raise ModelUnavailableError(f"cannot load {model_id}: {text.splitlines()[0]}") from exc
