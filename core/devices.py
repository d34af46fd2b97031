"""Device names, read one way everywhere: ``cpu``, ``cuda``, ``cuda:1``.

Every rule that depends on the kind of device (batch limits, prefetching, memory budgets,
Ray's GPU count, dtype defaults) asks here, so that ``cuda:1`` is a GPU wherever ``cuda``
is.
"""

from __future__ import annotations

CPU = "cpu"
CUDA = "cuda"


def device_kind(device: str | None) -> str:
    """``"cuda"`` for any CUDA device (``cuda``, ``cuda:1``), else ``"cpu"``."""
    return CUDA if is_cuda(device) else CPU


def is_cuda(device: str | None) -> bool:
    """Whether ``device`` names a CUDA device, with or without an index."""
    return str(device or "").split(":", 1)[0] == CUDA


def is_cpu(device: str | None) -> bool:
    return not is_cuda(device)


def cuda_index(device: str | None) -> int | None:
    """The GPU index ``cuda:N`` names (0 for a bare ``cuda``); None for the CPU."""
    if not is_cuda(device):
        return None
    _, _, index = str(device).partition(":")
    return int(index) if index.isdigit() else 0
