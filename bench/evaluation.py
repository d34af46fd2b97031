"""Batch evaluation memory: peak RSS against the budget, and against the seed's failure mode.

``python -m bench evaluation`` — three models (bundled faster-whisper tiny.en
and base, and a random-weight Whisper with whisper-small's config through
the transformers backend) on 24 demo utterances:

1. ERT: ``runner.start`` with a memory budget; the peak RSS of the whole
   process tree (runner + batch workers), sampled every 50 ms, over the budget.
2. The seed's failure mode, same run: one process loads every model, keeps
   them all, and transcribes with each; its peak RSS.
3. Throughput of the tuned batch size against batch 1 for faster-whisper base.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.asr.base import DecodeOptions
from core.asr.registry import load_asr_registry
from core.demo_data import make_demo_dataset
from core.evaluation import runner
from core.evaluation.config import RunConfig
from core.evaluation.records import RunRecords
from core.system import process_tree_rss_gb

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import OUT, save, table

N = 24
BUDGET_GB = 3.0


def _small_whisper(folder: Path) -> Path:
    """whisper-small's shape (244M parameters), random weights: real memory, no download."""
    if (folder / "config.json").exists():
        return folder
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from tests.asr_tiny import build_whisper

    build_whisper(folder)  # processor and tokenizer files
    config = WhisperConfig.from_pretrained(folder)
    config.update(dict(d_model=768, encoder_layers=12, decoder_layers=12,
                       encoder_attention_heads=12, decoder_attention_heads=12,
                       encoder_ffn_dim=3072, decoder_ffn_dim=3072))
    torch.manual_seed(0)
    WhisperForConditionalGeneration(config).save_pretrained(folder)
    return folder


class PeakSampler(threading.Thread):
    def __init__(self, pid: int | None = None) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, process_tree_rss_gb(self.pid))
            self._stop.wait(0.05)

    def stop(self) -> float:
        self._stop.set()
        self.join()
        return self.peak


NO_FREE = """
import core, json, sys
from core.asr.base import DecodeOptions
from core.asr.base import DecodeOptions
from core.asr.registry import load_asr_registry
from core.datasets import load_manifest
reg = load_asr_registry(sys.argv[1] and __import__('pathlib').Path(sys.argv[1]))
clips = [s.load_audio() for s in load_manifest(sys.argv[2])]
kept = []
for key in json.loads(sys.argv[3]):
    backend = __import__('core.asr.registry', fromlist=['x']).create_backend(reg.get(key))
    backend.load()
    backend.transcribe(clips, DecodeOptions(batch_size=8))
    kept.append(backend)  # the seed's scripts never freed a model
"""


def _throughputs(registry: Path, manifest: Path, tuned: int) -> tuple[float, float]:
    """Audio seconds per second for faster-whisper base at batch 1 and at the tuned size,
    warmed up, on the same clips (the tuner's own curve includes the first call's warm-up)."""
    from core.asr.registry import create_backend
    from core.datasets import load_manifest

    clips = [s.load_audio() for s in load_manifest(manifest)]
    audio = sum(c.size for c in clips) / 16000
    backend = create_backend(load_asr_registry(registry).get("faster-whisper:base"))
    backend.load()
    backend.transcribe(clips[:4], DecodeOptions(batch_size=4))
    rates = []
    for size in (1, tuned):
        started = time.perf_counter()
        backend.transcribe(clips, DecodeOptions(batch_size=size))
        rates.append(audio / (time.perf_counter() - started))
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
    small = _small_whisper(root / "whisper-small-random")
    registry = root / "asr.toml"
    registry.write_text(f"""
[models."faster-whisper:tiny.en"]
source = "bundled:faster-whisper-tiny.en"
[models."faster-whisper:base"]
source = "bundled:faster-whisper-base"
[models."whisper:small-random"]
source = "{small.resolve()}"
""")
    models = ["faster-whisper:tiny.en", "faster-whisper:base", "whisper:small-random"]
    needs = {k: load_asr_registry(registry).get(k).memory_gb() for k in models}

    sampler = PeakSampler()
    sampler.start()
    started = time.perf_counter()
    outcome = runner.start(RunConfig(dataset=str(subset), models=models, budget_gb=BUDGET_GB,
                                     out_dir=str(root / "runs"), registry_path=str(registry),
                                     use_cache=False))
    ert_seconds = time.perf_counter() - started
    ert_peak = sampler.stop()
    plan = json.loads((outcome.run_dir / "plan.json").read_text())

    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", NO_FREE, str(registry), str(subset),
                             json.dumps(models)])
    sampler = PeakSampler(proc.pid)
    sampler.start()
    proc.wait()
    nofree_seconds = time.perf_counter() - started
    nofree_peak = sampler.stop()

    statuses = RunRecords(outcome.run_dir).last_model_status()
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
