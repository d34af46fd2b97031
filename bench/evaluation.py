"""Batch evaluation memory: peak RSS against the budget, and against the seed's failure mode.

``python -m bench evaluation`` — three models (bundled faster-whisper base, and
random-weight Wav2Vec2 CTC models of wav2vec2-base's and wav2vec2-large's
sizes through the transformers backend) on 12 demo utterances:

1. ERT: ``ert evaluate`` with a memory budget; the peak RSS of the whole
   process tree (runner + batch workers), sampled every 50 ms, over the budget.
2. The seed's failure mode, same run: one process loads every model, keeps
   them all, and transcribes with each; its peak RSS.
3. Throughput of the tuned batch size against batch 1 for faster-whisper base.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.asr.base import DecodeOptions
from core.asr.memory import need_gb
from core.asr.registry import load_asr_registry
from core.audio import SAMPLE_RATE
from core.demo_data import make_demo_dataset
from core.evaluation.run_dir import run_dirs
from core.metrics import rtfx
from core.system import process_tree_rss_gb

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import OUT, save, table

N = 12
BUDGET_GB = 8.0
# Random weights rarely say end-of-text: cap every model's output at a sentence's length.
MAX_TOKENS = 32


def _random_wav2vec2(folder: Path, hidden: int, layers: int) -> Path:
    """A Wav2Vec2 CTC model of real size with random weights (CTC decoding is quick on a
    CPU, so the benchmark measures memory, not a slow decoder)."""
    if (folder / "model.safetensors").exists():
        return folder
    import torch
    from transformers import Wav2Vec2ForCTC

    from tests.tiny_models import build_wav2vec2

    build_wav2vec2(folder)  # processor and vocabulary files
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=hidden // 64,
                  intermediate_size=4 * hidden)
    torch.manual_seed(0)
    Wav2Vec2ForCTC(Wav2Vec2ForCTC.config_class.from_dict(config)).save_pretrained(folder)
    return folder


class PeakSampler(threading.Thread):
    def __init__(self, pid: int | None = None) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._done = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, process_tree_rss_gb(self.pid))
            self._done.wait(0.05)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak


NO_FREE = """
import core, json, sys
from core.asr.base import DecodeOptions
from core.datasets import load_manifest
from core.asr.registry import load_asr_registry
MAX_TOKENS = 32
reg = load_asr_registry(sys.argv[1] and __import__('pathlib').Path(sys.argv[1]))
clips = [s.load_audio() for s in load_manifest(sys.argv[2])]
kept = []
for key in json.loads(sys.argv[3]):
    backend = __import__('core.asr.factory', fromlist=['x']).create_backend(reg.get(key))
    backend.load()
    backend.transcribe(clips, DecodeOptions(batch_size=8, max_new_tokens=MAX_TOKENS))
    kept.append(backend)  # the seed's scripts never freed a model
"""


def _throughputs(registry: Path, manifest: Path, tuned: int) -> tuple[float, float]:
    """Audio seconds per second for faster-whisper base at batch 1 and at the tuned size,
    warmed up, on the same clips (the tuner's own curve includes the first call's warm-up)."""
    from core.asr.factory import create_backend
    from core.datasets import load_manifest

    clips = [s.load_audio() for s in load_manifest(manifest)]
    audio = sum(c.size for c in clips) / SAMPLE_RATE
    backend = create_backend(load_asr_registry(registry).get("faster-whisper:base"))
    backend.load()
    backend.transcribe(clips[:4], DecodeOptions(batch_size=4))
    rates = []
    for size in (1, tuned):
        started = time.perf_counter()
        backend.transcribe(clips, DecodeOptions(batch_size=size))
        rates.append(rtfx(audio, time.perf_counter() - started) or 0.0)
    backend.free()
    return rates[0], rates[1]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    root = OUT / "evaluation"
    manifest = make_demo_dataset(OUT / "demo-en", langs=("en",), count=N)
    subset = root / "manifest.jsonl"
    root.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in manifest.read_text().splitlines()][:N]
    subset.write_text("".join(json.dumps({**r, "audio_filepath": str(
        (manifest.parent / r["audio_filepath"]).resolve())}) + "\n" for r in rows))
    base = _random_wav2vec2(root / "wav2vec2-base-random", 768, 12)
    large = _random_wav2vec2(root / "wav2vec2-large-random", 1024, 24)
    registry = root / "asr.toml"
    registry.write_text(f"""
[models."faster-whisper:base"]
source = "bundled:faster-whisper-base"
[models."wav2vec2:base-random"]
source = "{base.resolve()}"
[models."wav2vec2:large-random"]
source = "{large.resolve()}"
""")
    models = ["faster-whisper:base", "wav2vec2:base-random", "wav2vec2:large-random"]
    needs = {k: need_gb(load_asr_registry(registry).get(k)) for k in models}

    # Both sides run as a child process tree sampled the same way: ERT through its CLI
    # (runner + one worker per batch), the seed's way as one process.
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "core", "evaluate", "--dataset", str(subset),
                             "--models", *models, "--budget-gb", str(BUDGET_GB), "--registry",
                             str(registry), "--out", str(root / "runs"), "--no-cache"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sampler = PeakSampler(proc.pid)
    sampler.start()
    proc.wait()
    ert_seconds = time.perf_counter() - started
    ert_peak = sampler.stop()
    run = next(run_dirs(root / "runs"))  # the only run there
    plan = run.read_plan().to_dict()

    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", NO_FREE, str(registry), str(subset),
                             json.dumps(models)])
    sampler = PeakSampler(proc.pid)
    sampler.start()
    proc.wait()
    nofree_seconds = time.perf_counter() - started
    nofree_peak = sampler.stop()

    statuses = run.records().last_model_status()
    base_curve = statuses["faster-whisper:base"]["batch_curve"]
    tuned = statuses["faster-whisper:base"]["batch_size"] or 1
    b1, best = _throughputs(registry, subset, tuned)

    result_rows = [
        {"variant": "ERT: worker per batch, freed", "peak RSS GB": ert_peak,
         "budget GB": BUDGET_GB, "peak / budget": ert_peak / BUDGET_GB, "seconds": ert_seconds},
        {"variant": "seed: one process, nothing freed", "peak RSS GB": nofree_peak,
         "budget GB": BUDGET_GB, "peak / budget": nofree_peak / BUDGET_GB,
         "seconds": nofree_seconds},
    ]
    print(table(result_rows, f"three models, {N} utterances; planned needs "
                             + ", ".join(f"{k} {v:.2f} GB" for k, v in needs.items())))
    print(f"plan: {[b['models'] for b in plan['batches']]}")
    print(f"ERT peak vs no-free peak: {ert_peak / nofree_peak:.2f}")
    print(f"faster-whisper base batch curve: {base_curve}; tuned batch {tuned}: "
          f"{best:.1f} audio-s/s vs batch 1 {b1:.1f} → x{best / b1:.2f}" if b1 and best else
          f"faster-whisper base batch curve: {base_curve}")
    result = {"rows": result_rows, "needs_gb": needs, "plan": plan["batches"],
              "batch_curve_base": base_curve, "tuned_batch": tuned,
              "tuned_vs_batch1": best / b1 if b1 and best else None}
    print(f"saved {save('evaluation', result)}")
    return result


if __name__ == "__main__":
    main()
