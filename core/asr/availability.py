"""Whether an ASR model is on this machine, known before anything runs (issue 27).

A model the hub would have to send is marked in the pickers and the plan ("needs a
download: 0.15 GB"), and at run time it fails in seconds with the reason, instead of
sitting at 0 % through the hub client's retries: the check reads the hub cache's folders
(:mod:`core.hub`), and asks the hub only when the model is missing, with a bounded probe.
"""

from __future__ import annotations

from core import bundled, hub
from core.asr import memory
from core.asr.factory import backend_class
from core.asr.spec import AsrModelSpec


def download_gb(spec: AsrModelSpec, device: str = "cpu") -> float:
    """About what the hub would send: the model's weights as they load on ``device`` (the
    memory estimate's figure; checkpoints stored in half precision are smaller)."""
    return memory.estimate(spec, device).weights_gb


def missing(spec: AsrModelSpec, device: str = "cpu") -> str | None:
    """What keeps the model from loading here without the hub, in a few words ("needs a
    download: 0.15 GB", "no such folder", "not installed"), or None when it is here
    (bundled and installed, a local folder, a complete cached snapshot, or served
    elsewhere). No network call."""
    if backend_class(spec.backend).remote:
        return None
    if spec.is_bundled:
        return None if bundled.available(spec.bundled_name) else "not installed"
    if hub.on_this_machine(spec.source, spec.revision):
        return None
    if hub.looks_local(spec.source):
        return "no such folder"
    return f"needs a download: {download_gb(spec, device):.2f} GB"


def require(spec: AsrModelSpec, device: str = "cpu") -> None:
    """Raise :class:`core.hub.ModelUnavailableError` at once when the model is not here and
    the hub cannot send it now (offline, or no answer within a few seconds)."""
    if backend_class(spec.backend).remote or spec.is_bundled:
        return  # a bundled model's own check says which package is missing
    if hub.on_this_machine(spec.source, spec.revision):
        return
    hub.require_available(spec.source, spec.revision,
                          download=f"{download_gb(spec, device):.2f} GB")
