"""Loading CUDA's libraries on a thread while transformers imports.

On a GPU a model's first batch took 3–5 s more than the next ones (Whisper large-v3 on H100
and H200): cuDNN's sub-libraries, cuBLAS and cuFFT are loaded, and each kernel, the first
time they are used. The transformers import that comes before every load (9–11 s on the GPU
image) holds the interpreter but leaves the GPU idle, and torch lets go of the interpreter
while an op runs: a few small ops of each kind on a thread meanwhile take part of that cost
out of the first batch (1.2–1.3 s measured with ops of Whisper large's full shapes, which
held 1.5 GB for a moment; these are the same ops, a few MB: BENCHMARKS.md). Only a head
start: it keeps nothing and never fails a load.
"""

from __future__ import annotations

import threading
from typing import Any


def start(device: str, dtype: Any) -> threading.Thread:
    """Warm ``device`` up in ``dtype`` (a torch dtype) on a daemon thread; join it before
    the first batch so the two do not compete."""
    thread = threading.Thread(target=_warm, args=(device, dtype), name="ert-cuda-warmup",
                              daemon=True)
    thread.start()
    return thread


def _warm(device: str, dtype: Any) -> None:
    try:
        import torch

        _ops(device, dtype)
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
    except Exception:  # noqa: S110  (a head start only: the load reports real failures)
        pass


def _ops(device: str, dtype: Any) -> None:
    """The kinds of op a speech model's batch runs: a 1-D convolution (cuDNN), matrix
    products (cuBLAS), attention over a long and a one-token query (SDPA), normalisation and
    softmax, and a short-time Fourier transform (cuFFT, the log-mel features)."""
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        x = torch.randn(2, 128, 3000, device=device, dtype=dtype)
        h = F.gelu(F.conv1d(x, torch.randn(256, 128, 3, device=device, dtype=dtype), padding=1))
        h = h.transpose(1, 2) @ torch.randn(256, 1024, device=device, dtype=dtype)
        h = F.layer_norm(h, (1024,))
        q = h.reshape(2, 3000, 16, 64).transpose(1, 2)[:, :, :1500]
        F.scaled_dot_product_attention(q, q, q)
        F.scaled_dot_product_attention(q[:, :, :1], q, q)
        h.softmax(-1).argmax(-1)
        audio = torch.randn(2, 480_000, device=device)
        torch.stft(audio, 400, 160, window=torch.hann_window(400, device=device),
                   return_complex=True).abs()
