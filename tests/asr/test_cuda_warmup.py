"""The CUDA warm-up during a GPU load: its ops are valid, it never fails a load, and a CPU
load does not start it."""

from __future__ import annotations

from core.asr import AsrModelSpec, create_backend, cuda_warmup

import threading

import pytest
import torch

from tests.tiny_models import build_whisper


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_warmup_ops_run_as_written(dtype) -> None:
    """On the GPU their failures are swallowed, so a broken shape would silently warm
    nothing: run the same ops here."""
    cuda_warmup._ops("cpu", dtype)


def test_warmup_without_a_usable_gpu_ends_quietly(monkeypatch) -> None:
    raised: list[object] = []
    monkeypatch.setattr(threading, "excepthook", raised.append)
    thread = cuda_warmup.start("cuda:7", torch.bfloat16)  # no such device here
    thread.join(timeout=60)
    assert not thread.is_alive() and raised == []


def test_a_cpu_load_starts_no_warmup(tmp_path, monkeypatch) -> None:
    started: list[str] = []
    monkeypatch.setattr(cuda_warmup, "start", lambda device, dtype: started.append(device))
    spec = AsrModelSpec(key="whisper:tiny-random", source=str(build_whisper(tmp_path / "w")),
                        family="whisper", languages=("*",))
    backend = create_backend(spec, dtype="float32")
    backend.load()
    backend.free()
    assert started == []


def test_a_gpu_load_warms_up_while_it_loads_and_waits_for_it(tmp_path, monkeypatch) -> None:
    """Here the GPU load itself fails (no CUDA in this torch); the warm-up was started
    before it, with the load's dtype, and was over when the failure came back."""
    threads: list[threading.Thread] = []
    calls: list[tuple[str, object]] = []

    def fake_start(device: str, dtype: object) -> threading.Thread:
        calls.append((device, dtype))
        thread = threading.Thread(target=lambda: None)
        thread.start()
        threads.append(thread)
        return thread

    monkeypatch.setattr(cuda_warmup, "start", fake_start)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    spec = AsrModelSpec(key="whisper:tiny-random", source=str(build_whisper(tmp_path / "w")),
                        family="whisper", languages=("*",))
    backend = create_backend(spec, device="cuda")
    with pytest.raises(Exception):  # noqa: B017  (whatever this CPU torch raises)
        backend.load()
    assert calls == [("cuda", torch.bfloat16)]
    assert not threads[0].is_alive()
