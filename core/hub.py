"""Turning Hugging Face hub failures into one clear, stack-trace-free message.

Users have the hub; this machine and CI may not. A model that is neither in
the local cache nor reachable must say exactly that, for the chat and the
ASR backends alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ModelUnavailableError(RuntimeError):
    """A model could not be loaded; the message is meant for the user as is."""


def is_local(source: str) -> bool:
    return Path(source).expanduser().exists()


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}


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
