"""bf16 against fp32 weights for transformers ASR on this CPU: speed, memory, agreement.

``python -m bench dtype``. Random weights at two real architectures' shapes (no real
transformers ASR weights are reachable offline): Whisper *small* (d_model 768,
12 + 12 layers, the multilingual vocabulary) and Wav2Vec2 *large* CTC (1024 wide,
24 layers). Eight 5–10 s espeak-ng clips, one batch of eight, greedy, Whisper capped
at 32 new tokens so random weights do not decode 448. The baseline is fp32 (what every
CPU got before), measured in the same run; each variant loads in a fresh process
through ``create_backend(spec, "cpu", dtype)``, so its RSS is its own. The random
Whisper's generation config suppresses timestamp tokens: it would emit them as text, and
transformers then decodes the window again from each one, so time would follow how many
it happened to emit rather than the dtype.

Columns: RTFx (audio seconds per wall second of the batch); the RSS the load added
(weights); the peak RSS growth while transcribing (activations, sampled every 5 ms);
the planner's estimate for the variant (:func:`core.asr.memory.estimate`, batch 8:
its activation allowance was fitted on 30 s clips, so the CTC model's is generous
here). Accuracy proxy, since random weights make no words: agreement with the fp32
outputs — identical transcripts, character similarity, for CTC the per-frame argmax
and the logits' relative error, for Whisper the generated tokens (position by position)
and the encoder states' and first decoding step's logits' relative error on two clips.
Random models sit near ties, so their disagreement overstates what a trained model's would be.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core.asr.base import DecodeOptions
from core.asr.factory import create_backend
from core.asr.spec import AsrModelSpec
from core.audio import SAMPLE_RATE
from core.demo_data import SENTENCES, synthesize

import argparse
import difflib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import save, table
from tests.tiny_models import build_wav2vec2_large, build_whisper_sized

GB = 1024**3
DTYPES = ("float32", "bfloat16")  # the first is the baseline
MODELS = ("whisper-small", "wav2vec2-large")
FAMILY = {"whisper-small": "whisper", "wav2vec2-large": "wav2vec2"}
PROMPT = [50258, 50259, 50359, 50363]  # <|startoftranscript|><|en|><|transcribe|><|notimestamps|>


def _clips(count: int) -> list[np.ndarray]:
    """``count`` English clips of 5–10 s: sentences joined until 5 s, cut at 10 s."""
    sentences = iter(SENTENCES["en"] * 4)
    clips = []
    while len(clips) < count:
        audio = np.zeros(0, np.float32)
        while audio.size < 5 * SAMPLE_RATE:
            audio = np.concatenate([audio, synthesize(next(sentences), "en")])
        clips.append(audio[:10 * SAMPLE_RATE])
    return clips


class PeakRss:
    """The process's peak RSS while the ``with`` block runs, sampled every 5 ms."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def _probe_whisper(backend: Any, clips: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Encoder states and the first step's logits for two clips: a continuous comparison."""
    import torch

    runner = backend.runner
    features = runner.to_model(runner.processor.feature_extractor(
        clips[:2], sampling_rate=SAMPLE_RATE, return_tensors="pt"))
    with torch.inference_mode():
        out = runner.model(input_features=features["input_features"],
                           decoder_input_ids=torch.tensor([PROMPT] * 2))
    return {"encoder": out.encoder_last_hidden_state.float().numpy(),
            "first_logits": out.logits[:, -1].float().numpy()}


def measure(model: str, dtype: str, folder: str, clips_file: str, out: str,
            max_new_tokens: int) -> dict[str, Any]:
    """One variant, meant to run alone in a fresh process (``--child``)."""
    from core.asr.memory import estimate

    import psutil
    import torch

    process = psutil.Process()
    stored = np.load(clips_file)
    clips = [stored[f"clip{i}"] for i in range(len(stored.files))]
    spec = AsrModelSpec(f"{FAMILY[model]}:bench", folder, family=FAMILY[model])
    options = DecodeOptions(language="en", batch_size=len(clips), max_new_tokens=max_new_tokens)
    before = process.memory_info().rss
    backend = create_backend(spec, "cpu", dtype)
    backend.load()
    loaded_dtypes = sorted({str(p.dtype) for p in backend.model.parameters()})
    backend.transcribe(clips[:1], options)  # warm-up: kernels chosen, allocator primed
    captured: list[Any] = []  # what the backend computes: CTC logits, or Whisper's tokens
    if FAMILY[model] == "wav2vec2":
        compute = backend.runner.logits

        def keep(batch: list[np.ndarray], decode: DecodeOptions) -> list[Any]:
            captured.extend(found := compute(batch, decode))
            return found

        backend.runner.logits = keep
    else:
        generate = backend.runner.model.generate

        def keep_ids(*args: Any, **kwargs: Any) -> Any:
            captured.append(ids := generate(*args, **kwargs))
            return ids

        backend.runner.model.generate = keep_ids
    loaded = process.memory_info().rss
    with PeakRss() as peak:
        started = time.perf_counter()
        transcripts = backend.transcribe(clips, options)
        seconds = time.perf_counter() - started
    if FAMILY[model] == "wav2vec2":
        arrays = {"logits": np.concatenate([x.float().numpy() for x in captured])}
    else:
        arrays = {**_probe_whisper(backend, clips), "ids": captured[0].numpy()}
    np.savez(out, **arrays)
    need = estimate(spec, "cpu", batch_size=len(clips), dtype=dtype)
    return {"model": model, "dtype": backend.dtype, "parameters": loaded_dtypes,
            "torch_threads": torch.get_num_threads(),
            "audio_seconds": sum(c.size for c in clips) / SAMPLE_RATE, "seconds": seconds,
            "tokens": int(arrays["ids"].size) if "ids" in arrays else None,
            "load_seconds": backend.load_seconds, "load_rss_gb": (loaded - before) / GB,
            "activations_gb": (peak.peak - loaded) / GB, "estimate_gb": need.total_gb,
            "texts": [t.text for t in transcripts], "errors": [t.error for t in transcripts]}


def _agreement(base: dict[str, Any], other: dict[str, Any], arrays: tuple[Any, Any]
               ) -> dict[str, Any]:
    """How close a variant's outputs are to the fp32 baseline's."""
    pairs = list(zip(base["texts"], other["texts"], strict=True))
    row = {"same texts": f"{sum(a == b for a, b in pairs)}/{len(pairs)}",
           "char sim %": 100 * float(np.mean([difflib.SequenceMatcher(None, a, b).ratio()
                                              for a, b in pairs]))}
    first, second = arrays

    def relative(name: str) -> float:
        return float(np.linalg.norm(second[name] - first[name]) / np.linalg.norm(first[name]))

    if "logits" in first:
        row["argmax agree %"] = 100 * float(np.mean(first["logits"].argmax(-1)
                                                    == second["logits"].argmax(-1)))
        row["rel. error"] = f"logits {relative('logits'):.3f}"
    else:  # tokens position by position; a length difference counts as disagreement
        a, b = first["ids"], second["ids"]
        width = max(a.shape[1], b.shape[1])
        a, b = (np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=-1) for x in (a, b))
        row["argmax agree %"] = 100 * float(np.mean(a == b))
        row["rel. error"] = (f"encoder {relative('encoder'):.3f}, "
                             f"logits {relative('first_logits'):.3f}")
    return row


def _child(argv: list[str]) -> dict[str, Any]:
    model, dtype, folder, clips_file, out, tokens = argv
    result = measure(model, dtype, folder, clips_file, out, int(tokens))
    print(json.dumps(result))
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench dtype")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    args = parser.parse_args(argv)
    from core.system import cpu_flags, cpu_has_bf16, cpu_model

    began = time.perf_counter()
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="ert-bench-dtype-") as tmp:
        root = Path(tmp)
        clips = _clips(args.clips)
        np.savez(root / "clips.npz", **{f"clip{i}": c for i, c in enumerate(clips)})
        print(f"  {len(clips)} clips, {sum(c.size for c in clips) / SAMPLE_RATE:.0f} s of audio",
              file=sys.stderr)
        for model in args.models:
            folder = (build_whisper_sized(root / model, "small") if model == "whisper-small"
                      else build_wav2vec2_large(root / model))
            found, arrays = {}, {}
            for dtype in DTYPES:
                out = root / f"{model}-{dtype}.npz"
                proc = subprocess.run(
                    [sys.executable, "-m", "bench", "dtype", "--", "--child", model, dtype,
                     str(folder), str(root / "clips.npz"), str(out), str(args.max_new_tokens)],
                    capture_output=True, text=True, check=False)
                if proc.returncode:
                    raise RuntimeError(f"{model} {dtype} failed:\n{proc.stderr[-3000:]}")
                found[dtype] = json.loads(proc.stdout.strip().splitlines()[-1])
                arrays[dtype] = dict(np.load(out))
                print(f"  {model} {dtype}: {found[dtype]['seconds']:.1f} s", file=sys.stderr)
            base = found[DTYPES[0]]
            for dtype in DTYPES:
                got = found[dtype]
                rtfx = got["audio_seconds"] / got["seconds"]
                rows.append({
                    "model": model, "dtype": got["dtype"], "tokens": got["tokens"], "RTFx": rtfx,
                    "x fp32": base["seconds"] / got["seconds"],
                    "load GB": got["load_rss_gb"],
                    "x fp32 load": got["load_rss_gb"] / base["load_rss_gb"],
                    "activ. GB": got["activations_gb"],
                    "x fp32 activ.": got["activations_gb"] / base["activations_gb"],
                    "estimate GB": got["estimate_gb"],
                    **_agreement(base, got, (arrays[DTYPES[0]], arrays[dtype]))})
            results[model] = found
    flags = sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"})
    title = (f"bf16 vs fp32 weights, {args.clips} clips of 5-10 s, batch {args.clips}, greedy, "
             f"Whisper <= {args.max_new_tokens} tokens; {cpu_model()}, bf16 flags {flags}")
    print(table(rows, title))
    result = {"cpu": cpu_model(), "cpu_bf16": cpu_has_bf16(), "bf16_flags": flags,
              "clips": args.clips, "max_new_tokens": args.max_new_tokens, "rows": rows,
              "variants": results, "seconds": time.perf_counter() - began}
    print(f"saved {save('dtype', result)} ({result['seconds']:.0f} s in all)")
    return result


if __name__ == "__main__":
    main()
