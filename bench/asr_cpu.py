"""faster-whisper tiny.en on the CPU: ERT's batched path against naive sequential decoding.

``python -m bench asr`` — 40 espeak-ng English utterances. Baselines, measured
in the same run: (1) naive: ``WhisperModel(folder)`` with its defaults, one
clip at a time (``transcribe`` defaults: beam 5); (2) sequential greedy int8,
batch 1. ERT: :class:`FasterWhisperBackend` (int8, greedy) in its default
mode — every clip in a window of its own, windows of different clips batched
— and in the opt-in packed mode (short clips share 30 s windows). WER is
printed for every variant: a speed-up that costs accuracy does not count.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core import bundled
from core.asr.base import DecodeOptions
from core.asr.factory import create_backend
from core.asr.spec import AsrModelSpec
from core.audio import SAMPLE_RATE
from core.datasets import load_manifest
from core.demo_data import make_demo_dataset
from core.metrics import rtfx, score

import sys
from typing import Any

from bench.common import OUT, median, save, table, timed

N_UTTERANCES = 40
REPEATS = 2


def _naive(folder: str, clips: list, beam: int | None, compute_type: str) -> tuple[float, list]:
    from faster_whisper import WhisperModel

    model = WhisperModel(folder, device="cpu", compute_type=compute_type)
    kwargs: dict[str, Any] = {} if beam is None else {"beam_size": beam}

    def run() -> list[str]:
        return [" ".join(s.text.strip() for s in model.transcribe(c, **kwargs)[0]) for c in clips]

    run()  # warm-up on the same clips: weights paged in, kernels chosen
    seconds = []
    texts: list[str] = []
    for _ in range(REPEATS):
        spent, texts = timed(run)
        seconds.append(spent)
    return median(seconds), texts


def _ert(clips: list, batch_size: int, pack: bool = False) -> tuple[float, list]:
    spec = AsrModelSpec(key="faster-whisper:tiny.en", source="bundled:faster-whisper-tiny.en",
                        backend="faster-whisper", languages=("en",))
    backend = create_backend(spec)
    backend.load()
    options = DecodeOptions(language="en", batch_size=batch_size, pack_short=pack)
    backend.transcribe(clips[:batch_size], options)
    seconds = []
    texts: list[str] = []
    for _ in range(REPEATS):
        spent, results = timed(lambda: backend.transcribe(clips, options))
        seconds.append(spent)
        texts = [r.text for r in results]
    backend.free()
    return median(seconds), texts


def main(argv: list[str] | None = None) -> dict[str, Any]:
    manifest = make_demo_dataset(OUT / "demo-en", langs=("en",), count=N_UTTERANCES)
    samples = load_manifest(manifest)[:N_UTTERANCES]
    clips = [s.load_audio() for s in samples]
    refs = [s.text for s in samples]
    audio = sum(c.size for c in clips) / SAMPLE_RATE
    folder = str(bundled.locate("faster-whisper-tiny.en"))
    rows = []
    variants = [
        ("naive: defaults, beam 5, batch 1", lambda: _naive(folder, clips, None, "default")),
        ("sequential greedy int8, batch 1", lambda: _naive(folder, clips, 1, "int8")),
        *[(f"ERT independent (default), batch {b}", lambda b=b: _ert(clips, b))
          for b in (1, 8, 16)],
        *[(f"ERT packed (opt-in), batch {b}", lambda b=b: _ert(clips, b, pack=True))
          for b in (8, 16, 40)],
    ]
    for name, run in variants:
        seconds, texts = run()
        wer = score(refs, texts, "en").wer
        speed = rtfx(audio, seconds) or 0.0
        rows.append({"variant": name, "seconds": seconds, "RTFx": speed, "WER %": 100 * wer})
        print(f"  {name}: {seconds:.1f} s, RTFx {speed:.1f}, WER {100 * wer:.1f} %",
              file=sys.stderr)
    base = rows[0]["RTFx"]
    greedy = rows[1]["RTFx"]
    for row in rows:
        row["x naive"] = row["RTFx"] / base
        row["x greedy"] = row["RTFx"] / greedy
    print(table(rows, f"faster-whisper tiny.en, CPU, {len(clips)} utterances, "
                      f"{audio:.0f} s of audio"))
    result = {"audio_seconds": audio, "utterances": len(clips), "rows": rows}
    print(f"saved {save('asr_cpu', result)}")
    return result


if __name__ == "__main__":
    main()
