"""Measure the activation allowance of core/asr/memory.py (run by hand, not in CI).

For each case, in a fresh process: RSS after the imports, after loading, and
the peak while transcribing a batch of eight 30 s clips (greedy decoding,
at most 128 new tokens). Prints weights (parameters × bytes), the RSS the load
added, and the activations (peak minus loaded RSS).

    .venv/bin/python scripts/measure_asr_activations.py
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.audio import SAMPLE_RATE

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from tests.tiny_models import build_wav2vec2_large, build_whisper_sized

# Real-size architectures; transformers ones get random weights (no hub here).
CASES = {
    "faster-whisper:tiny.en": {},
    "faster-whisper:base": {},
    "whisper:tiny": {"size": "tiny"},
    "whisper:base": {"size": "base"},
    "wav2vec2:large": {},
}
CLIPS, CLIP_SECONDS = 8, 30


def _speech(seconds: float) -> np.ndarray:
    """espeak-ng speech repeated to ``seconds`` (real models then decode real tokens)."""
    import soundfile
    from scipy.signal import resample_poly

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav),
                        "The quick brown fox jumps over the lazy dog. Speech recognition "
                        "turns spoken words into written text on small machines."], check=True)
        audio, rate = soundfile.read(wav, dtype="float32")
    audio = resample_poly(audio, SAMPLE_RATE, rate).astype(np.float32)
    reps = int(np.ceil(seconds * SAMPLE_RATE / audio.size))
    return np.tile(audio, reps)[: int(seconds * SAMPLE_RATE)]


def measure(key: str) -> dict[str, float]:
    from core.asr import AsrModelSpec, DecodeOptions, create_backend, load_asr_registry
    from core.asr.memory import estimate

    import faster_whisper  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    process = psutil.Process()
    clips = [_speech(CLIP_SECONDS)] * CLIPS
    with tempfile.TemporaryDirectory() as tmp:
        if key.startswith("faster-whisper"):
            spec = load_asr_registry().get(key)
        elif key.startswith("wav2vec2"):
            build_wav2vec2_large(Path(tmp))
            spec = AsrModelSpec(key=key, source=tmp, family="wav2vec2")
        else:
            build_whisper_sized(Path(tmp), **CASES[key])
            spec = AsrModelSpec(key=key, source=tmp, family="whisper")
        rss_before = process.memory_info().rss
        backend = create_backend(spec)
        backend.load()
        backend.transcribe(clips[:1], DecodeOptions(max_new_tokens=8))  # warm-up allocations
        rss_loaded = process.memory_info().rss
        peak = rss_loaded
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, process.memory_info().rss)
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        backend.transcribe(clips, DecodeOptions(language="en", batch_size=CLIPS,
                                                max_new_tokens=128))
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        weights = estimate(spec).weights_gb
    gb = 1024**3
    return {"weights_gb": weights, "load_rss_gb": (rss_loaded - rss_before) / gb,
            "activations_gb": (peak - rss_loaded) / gb, "seconds": elapsed}


def main() -> None:
    if len(sys.argv) > 1:
        print(json.dumps(measure(sys.argv[1])))
        return
    for key in CASES:
        out = subprocess.run([sys.executable, __file__, key], capture_output=True, text=True)
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-500:]
        print(f"{key:26s} {line}")


if __name__ == "__main__":
    main()
