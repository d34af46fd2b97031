"""bf16 against fp32 with *real* Whisper weights: WER and speed on the same clips.

``python -m bench dtype_wer``. The bundled faster-whisper tiny.en and base are converted
back to transformers Whisper (:mod:`core.asr.ct2_whisper`: their own float16 weights), then
run through ERT's transformers backend in fp32 (the baseline, measured in the same run) and
in bf16 on the espeak-ng demo set: 40 English clips for tiny.en, 40 English + 40 French for
base (each decoded in its language), greedy, batches of 8.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core import bundled, paths
from core.asr.base import DecodeOptions
from core.asr.ct2_whisper import convert
from core.asr.factory import create_backend
from core.asr.spec import AsrModelSpec
from core.audio import SAMPLE_RATE
from core.datasets import load_manifest
from core.demo_data import make_demo_dataset
from core.metrics import score

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import OUT, save, table

MODELS = {"tiny.en": ("faster-whisper-tiny.en", ("en",)),
          "base": ("faster-whisper-base", ("en", "fr"))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(dir=paths.cache_dir()) as tmp:
        for name, (package, langs) in MODELS.items():
            folder = convert(bundled.locate(package), Path(tmp) / name)
            manifest = make_demo_dataset(OUT / f"demo-{'-'.join(langs)}", langs=langs)
            samples = load_manifest(manifest)
            clips = [s.load_audio() for s in samples]
            audio = sum(c.size for c in clips) / SAMPLE_RATE
            for dtype in ("float32", "bfloat16"):
                backend = create_backend(AsrModelSpec(f"whisper:{name}", str(folder)), "cpu",
                                         dtype)
                backend.load()
                started = time.perf_counter()
                out = backend.transcribe(clips, DecodeOptions(batch_size=8),
                                         languages=[s.language for s in samples])
                seconds = time.perf_counter() - started
                backend.free()
                result = score([s.text for s in samples], [t.text for t in out],
                               [s.language for s in samples])
                row = {"model": name, "dtype": dtype, "clips": len(clips),
                       "WER %": 100 * result.wer, "RTFx": audio / seconds,
                       "WER en %": None, "WER fr %": None}
                for lang in langs:
                    mine = [(s, t) for s, t in zip(samples, out, strict=True)
                            if s.language == lang]
                    row[f"WER {lang} %"] = 100 * score([s.text for s, _ in mine],
                                                       [t.text for _, t in mine], lang).wer
                rows.append(row)
                print(f"  {name} {dtype}: WER {row['WER %']:.1f} %, RTFx {row['RTFx']:.1f}",
                      file=sys.stderr)
    for row in rows:
        base = next(r for r in rows if r["model"] == row["model"] and r["dtype"] == "float32")
        row["x fp32 RTFx"] = row["RTFx"] / base["RTFx"]
        row["WER − fp32 (points)"] = row["WER %"] - base["WER %"]
    print(table(rows, "real Whisper weights (converted from CTranslate2), transformers, CPU"))
    result = {"rows": rows}
    print(f"saved {save('dtype_wer', result)}")
    return result


if __name__ == "__main__":
    main()
