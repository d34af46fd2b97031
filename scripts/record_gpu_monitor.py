"""Record the Monitor's samples on a GPU machine, idle then under load, for a replay.

``python3 scripts/record_gpu_monitor.py OUT.json`` — the real sampler (NVML through
``core.system.read_gpus``) every 0.5 s: 5 s idle, 15 s with a matmul loop on every GPU,
5 s idle again. ``scripts/replay_monitor.py`` draws the file with the Monitor's own chart
component, so the GPU panel can be checked where Streamlit and a browser run.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.monitor import Sampler

import json
import sys
import threading
import time
from dataclasses import asdict

STEP_S = 0.5


def _load(device: str, stop: threading.Event) -> None:
    import torch

    a = torch.randn(8192, 8192, device=device)
    while not stop.is_set():
        a = a @ a
        a = a / a.norm()
        torch.cuda.synchronize(device)


def _record(sampler: Sampler, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sampler.add(sampler.sample())
        time.sleep(STEP_S)


def main(out: str) -> None:
    import torch

    sampler = Sampler(interval=STEP_S)
    stop = threading.Event()
    loads = [threading.Thread(target=_load, args=(f"cuda:{i}", stop), daemon=True)
             for i in range(torch.cuda.device_count())]
    _record(sampler, 5)
    for thread in loads:
        thread.start()
    _record(sampler, 15)
    stop.set()
    for thread in loads:
        thread.join()
    _record(sampler, 5)
    samples = [asdict(s) for s in sampler.snapshot()]
    with open(out, "w") as handle:
        json.dump(samples, handle)
    last = samples[len(samples) // 2]
    print(f"{len(samples)} samples; mid-load: " + "; ".join(
        f"GPU{g['index']} {g['name']} {g['utilization_pct']} % {g['memory_used_gb']:.1f} GB "
        f"{g['temperature_c']} °C {g['power_w']} W" for g in last["gpus"]))


if __name__ == "__main__":
    main(sys.argv[1])
