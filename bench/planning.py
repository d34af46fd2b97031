"""Plans against runs: predicted vs measured memory and time, before and after measuring.

``python -m bench planning``. Each model is evaluated twice on the same 8 espeak-ng
clips (4 en, 4 fr) with a private measurement store: the first run is planned from
the derived estimate (the baseline, what every plan used before issue 12), the second
from what the first measured. Printed per model and run: the planned need, the
measured peak (RSS growth of the worker above its memory before the model loaded),
their ratio, and the planned against the actual time. Models: the bundled
faster-whisper tiny.en and base, and random weights at Whisper-small and Wav2Vec2-large
and Whisper-medium sizes (fp32, Whisper capped at 32 new tokens).

Also: how many batches ``ert analyze`` plans for the seed's models (configs/asr_models.toml)
on a 16 GB budget, from estimates alone, for clip lengths unknown (30 s windows: the plan
before issue 12), 15 s (MLS-like) and 5 s (the demo set), in fp32 and with the default dtype.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core import system
from core.asr.base import DecodeOptions
from core.asr.registry import load_asr_registry
from core.demo_data import make_demo_dataset
from core.evaluation import runner
from core.evaluation.config import RunConfig
from core.evaluation.planner import make_plan
from core.evaluation.run_dir import RunDir

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import save, table
from tests.tiny_models import build_wav2vec2_large, build_whisper_sized

SEED_BUDGET_GB = 16.0


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["ERT_CACHE_DIR"] = str(root / "cache")  # a private measurement store
        manifest = make_demo_dataset(root / "demo", langs=("en", "fr"), count=4)
        small = build_whisper_sized(root / "whisper-small", "small")
        medium = build_whisper_sized(root / "whisper-medium", "medium")
        large = build_wav2vec2_large(root / "wav2vec2-large")
        registry = root / "asr_models.toml"
        registry.write_text(
            '[models."faster-whisper:tiny.en"]\nsource = "bundled:faster-whisper-tiny.en"\n'
            'languages = ["en"]\n'
            '[models."faster-whisper:base"]\nsource = "bundled:faster-whisper-base"\n'
            f'[models."whisper:small-random"]\nsource = "{small}"\ndtype = "float32"\n'
            f'[models."whisper:medium-random"]\nsource = "{medium}"\ndtype = "float32"\n'
            f'[models."wav2vec2:large-random"]\nsource = "{large}"\nfamily = "wav2vec2"\n'
            'dtype = "float32"\n')
        for model in ("faster-whisper:tiny.en", "faster-whisper:base", "whisper:small-random",
                      "whisper:medium-random", "wav2vec2:large-random"):
            for attempt in ("1st (estimated)", "2nd (measured)"):
                config = RunConfig(dataset=str(manifest), models=[model], use_cache=False,
                                   out_dir=str(root / "runs"), registry_path=str(registry),
                                   decode=DecodeOptions(max_new_tokens=32))
                outcome = runner.start(config)
                m = RunDir(outcome.run_dir).read_summaries()[model]
                rows.append({
                    "model": model, "run": attempt, "planned from": m.predicted_from,
                    "planned GB": m.predicted_gb, "measured GB": m.measured_gb,
                    "planned/measured": _ratio(m.predicted_gb, m.measured_gb),
                    "planned s": m.predicted_seconds, "took s": m.actual_seconds,
                    "time error %": (100 * (m.predicted_seconds - m.actual_seconds)
                                     / m.actual_seconds
                                     if m.predicted_seconds and m.actual_seconds else None)})
                print(f"  {model} {attempt}: planned {m.predicted_gb} GB "
                      f"({m.predicted_from}), measured {m.measured_gb} GB; planned "
                      f"{m.predicted_seconds} s, took {m.actual_seconds} s", file=sys.stderr)
    print(table(rows, "planned against measured, 8 clips (4 en, 4 fr), 2 cores"))
    seed = load_asr_registry()
    specs = list(seed.models.values())
    machine = system.read_machine()
    seed_rows = []
    for clip in (None, 15.0, 5.0):  # clip lengths unknown (30 s windows), MLS-like, demo-like
        for dtype in ("float32", "auto"):
            plan = make_plan(specs, machine, budget_gb=SEED_BUDGET_GB, dtype=dtype,
                             clip_seconds=clip)
            seed_rows.append({"longest clip s": clip or "unknown (30)", "dtype": dtype,
                              "batches": len(plan.batches), "refused": len(plan.refused),
                              "models": sum(len(b.models) for b in plan.batches),
                              "largest batch": max(len(b.models) for b in plan.batches)})
    print(table(seed_rows, f"seed models, {SEED_BUDGET_GB:.0f} GB budget, estimates only"))
    result = {"rows": rows, "seed_plan": seed_rows}
    print(f"saved {save('planning', result)}")
    return result


if __name__ == "__main__":
    main()
